import { InvalidInvitation } from "../errors.ts";
import type { Replica } from "../replica/replica.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import { decodeSpaceClaim } from "../protocol/space-claim.ts";
import { parseInviteLink } from "./invite-link.ts";
import { deriveSpaceId } from "./space-claim.ts";

/**
 * Adds the space an invitation link names, with its key, to this device. Joining a space already held
 * with the same key changes nothing; with a different key it is refused (the link is not for that
 * space, or the space's key was replaced), so data is never mixed under two keys. The link's claim, if
 * any, is kept (also on a space already held without one) once its key and salt are seen to derive the
 * space id: a damaged claim is refused here rather than by a relay later.
 */
export async function joinSpace(replica: Replica, link: string): Promise<SpaceRow> {
  const inv = parseInviteLink(link);
  // Hashing is WebCrypto, which would end the IndexedDB transaction: checked before it.
  const parts = inv.claim && decodeSpaceClaim(inv.claim);
  if (parts && (await deriveSpaceId(parts.creator, parts.salt)) !== inv.spaceId) {
    throw new InvalidInvitation(
      "This invitation link is damaged: its claim does not belong to its space. Copy the link again, " +
        "exactly as you received it.",
    );
  }
  const spaces = replica.dexie.table<SpaceRow>("_spaces");
  return replica.dexie.transaction("rw", spaces, async () => {
    const existing = await spaces.get(inv.spaceId);
    if (existing) {
      if (!sameBytes(existing.key, inv.key)) {
        throw new InvalidInvitation(
          "This device already belongs to that space with a different key: the link is not valid for it.",
        );
      }
      if (inv.claim && !existing.claim) {
        const updated = { ...existing, claim: inv.claim };
        await spaces.put(updated);
        return updated;
      }
      return existing;
    }
    const row: SpaceRow = {
      id: inv.spaceId,
      name: inv.name ?? "Shared space",
      key: inv.key,
      createdAt: Date.now(),
      private: false,
      ...(inv.claim && { claim: inv.claim }),
    };
    await spaces.put(row);
    return row;
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
