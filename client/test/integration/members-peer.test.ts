// Issue 13 over a peer link with no relay at all: a removed device comes back and syncs with its
// admin over a data channel (the WebRTC protocol, in memory). Its commits after the removal are dropped
// there, and what the admin wrote after the key rotation reaches it but never opens.
import { afterEach, describe, expect, it } from "vitest";
import type { CommitQuarantined, ShoalError, Space } from "../../src/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { adminAndWriter, everything, type MemberDb } from "../member-devices.ts";
import { dataChannelPair } from "../../src/transports/data-channel-pair.ts";
import { waitFor } from "../wait-for.ts";
import { peerResponder, peerSession } from "../peer-link.ts";

type Db = MemberDb;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** `client` syncs with `server`'s replica over an in-memory data channel, as WebRTC peers do. */
async function link(client: Db, server: Db, space: Space, errors: ShoalError[]) {
  const [cc, cs] = dataChannelPair();
  const session = await peerSession(client, server, space, cc, { error: (e) => errors.push(e) });
  const responder = await peerResponder(server, client.deviceId, space, cs, { error: (e) => errors.push(e) });
  const sub = server.live(() => server.vector()).subscribe(() => responder.poke());
  responder.start();
  session.start();
  cleanup.push(() => {
    sub.unsubscribe();
    session.stop();
    responder.stop();
  });
}

describe("members over a peer link", () => {
  it("a device removed while away is cut off when it comes back through a peer", async () => {
    const { a, b, space, bPerson } = await adminAndWriter();

    // A removes B while B is away; B keeps writing.
    await a.remove(space, { person: bPerson });
    await a.patients.insert({ name: "After rotation", notes: "canary-peer-51c2" }, { space });
    await b.patients.insert({ name: "After removal", notes: "" }, { space });

    const errors: ShoalError[] = [];
    await link(b, a, space, errors);
    // B learns of its removal (membership commits open without a key) ...
    const bRow = b.live(() => b.replica.dexie.table<SpaceRow>("_spaces").get(space.id));
    await waitFor(bRow, (r) => r?.readOnly === "removed", 20_000, "B to learn it was removed");
    // ... and its commit after the removal is dropped by A when it arrives over the link.
    await waitFor(
      a.live(() => a.quarantine(space)),
      (q) => q.length === 1,
      20_000,
      "A to refuse B's commit written after its removal",
    );
    expect((await a.quarantine(space))[0]!.reason).toBe("membership");
    expect((await a.patients.toArray()).map((p) => p.name).sort()).toEqual([
      "After rotation",
      "Before removal",
    ]);
    const refused = errors.filter((e) => e.code === "CommitQuarantined") as CommitQuarantined[];
    expect(refused.map((e) => e.reason)).toEqual(["membership"]);
    // A's record written under the new key reaches B sealed and never opens there.
    expect(await everything(b)).not.toContain("canary-peer-51c2");
  });
});
