import { InvalidInvitation } from "../errors.ts";
import type { Replica } from "../replica/replica.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import { parseInviteLink } from "./invite-link.ts";

/**
 * Adds the space an invitation link names, with its key, to this device. Joining a space already held
 * with the same key changes nothing; with a different key it is refused (the link is not for that
 * space, or the space's key was replaced), so data is never mixed under two keys.
 */
export async function joinSpace(replica: Replica, link: string): Promise<SpaceRow> {
  const inv = parseInviteLink(link);
  const spaces = replica.dexie.table<SpaceRow>("_spaces");
  return replica.dexie.transaction("rw", spaces, async () => {
    const existing = await spaces.get(inv.spaceId);
    if (existing) {
      if (!sameBytes(existing.key, inv.key)) {
        throw new InvalidInvitation(
          "This device already belongs to that space with a different key: the link is not valid for it.",
        );
      }
      return existing;
    }
    const row: SpaceRow = {
      id: inv.spaceId,
      name: inv.name ?? "Shared space",
      key: inv.key,
      createdAt: Date.now(),
      private: false,
    };
    await spaces.put(row);
    return row;
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
