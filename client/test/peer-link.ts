// Shared by the peer-link membership tests: one device's session (the side that offers, as WebRTC
// peers' clients do) and another's responder, over the two ends of an in-memory data channel.
import type { ShoalError, Space } from "../src/index.ts";
import type { SpaceRow } from "../src/replica/stored-rows.ts";
import { PeerResponder } from "../src/peer/peer-responder.ts";
import { SpaceSealer } from "../src/sealing/sealer.ts";
import { SpaceSession } from "../src/sync/space-session.ts";
import type { dataChannelPair } from "../src/transports/data-channel-pair.ts";
import { openDataChannelLink, webRtcTransport } from "../src/transports/webrtc-transport.ts";
import type { MemberDb } from "./member-devices.ts";

type Channel = ReturnType<typeof dataChannelPair>[number];

/** The space key `db` holds (epoch 0). */
export const keyOf = async (db: MemberDb, space: Space) =>
  (await db.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!.key;

/** A session of `client` with the peer `server` over `channel` (not started), no snapshots. */
export async function peerSession(
  client: MemberDb,
  server: MemberDb,
  space: Space,
  channel: Channel,
  hooks: { state?: (s: string) => void; error: (e: ShoalError) => void },
): Promise<SpaceSession> {
  const key = await keyOf(client, space);
  return new SpaceSession({
    space: space.id,
    replica: {
      device: client.deviceId,
      vector: (s) => client.vector(s),
      applyCommits: (c) => client.applyCommits(c, "peer"),
      recordAcks: async () => {},
      readSnapshot: () => Promise.reject(new Error("no snapshots over peers")),
      importSnapshot: () => Promise.reject(new Error("no snapshots over peers")),
    },
    sealer: new SpaceSealer(client.replica.dexie, space.id, key),
    transport: webRtcTransport({ channel, peer: server.deviceId }),
    token: new Uint8Array(0),
    spaceKey: key,
    snapshots: { bootstrap: false, publishEvery: 0 },
    hooks: { state: hooks.state ?? (() => {}), error: hooks.error, synced: () => {}, acked: () => {} },
  });
}

/** `server`'s responder to the device `peer` over `channel` (not started); `admit` gates it. */
export async function peerResponder(
  server: MemberDb,
  peer: string,
  space: Space,
  channel: Channel,
  hooks: { state?: (s: string) => void; error: (e: ShoalError) => void },
  admit?: ConstructorParameters<typeof PeerResponder>[0]["admit"],
): Promise<PeerResponder> {
  return new PeerResponder({
    space: space.id,
    peer: peer as never,
    replica: {
      device: server.deviceId,
      vector: (s) => server.vector(s),
      applyCommits: (c) => server.applyCommits(c, "peer"),
      exportCommits: (s, o) => server.exportCommits(s, o),
    },
    sealer: new SpaceSealer(server.replica.dexie, space.id, await keyOf(server, space)),
    connect: (h) => openDataChannelLink(channel, h),
    ...(admit && { admit }),
    hooks: { state: hooks.state ?? (() => {}), error: hooks.error },
  });
}
