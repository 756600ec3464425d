// Soak seeds 96437 (plain) and 93126 (members): after the heal one replica's own (private space)
// connection said `connected` and never pulled again. The settle's reconnect had closed a connection
// whose `welcome` this session was still handling (waiting on a storage read); the next connection was
// made meanwhile, and the old welcome, resuming, marked the session welcomed for it. That connection's
// own welcome was then ignored ("a welcome after the handshake"), so nothing ever pulled on it.
// This test forces that interleaving with gates on the storage read and on the next connection's proofs.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/index.ts";
import { deriveRelayToken } from "../../src/crypto/keys.ts";
import { ValueStore } from "../../src/live/value-store.ts";
import { decodeBase64Url, decodeMessage, fromHex } from "../../src/protocol/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import { recordAcks } from "../../src/sync/acks.ts";
import { SpaceSession, type SessionState } from "../../src/sync/space-session.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import type { Transport, TransportHandlers } from "../../src/transports/transport.ts";
import type { SpaceId, VersionVector } from "../../src/types.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A promise the test resolves by hand. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** What the test watches: the session's reports, and each connection as the transport saw it. */
interface Seen {
  states: SessionState[];
  synced: number;
  /** Per `connect`: whether it opened, and how many `welcome` frames reached the session on it. */
  conns: { opened: boolean; welcomes: number }[];
  /** Each `connected` report: whether the current attempt's connection had delivered a welcome by then. */
  connectedOnWelcome: boolean[];
}

describe("a welcome handled while its connection closes", () => {
  it("does not stand for the next connection, which pulls and says synced (soak seeds 96437, 93126)", async () => {
    const relay = inProcessRelay();
    cleanups.push(() => relay.close());
    const db = await openDatabase({ name: `stale-welcome-${Date.now()}`, collections: {} });
    cleanups.push(() => db.close());
    const space = db.privateSpace;
    const row = (await db.replica.dexie.table<SpaceRow>("_spaces").get(space))!;
    const token = decodeBase64Url(await deriveRelayToken(row.key, fromHex(space, 16)));

    const seen = new ValueStore<Seen>({ states: [], synced: 0, conns: [], connectedOnWelcome: [] });
    const update = (f: (s: Seen) => void) => {
      const s = structuredClone(seen.get());
      f(s);
      seen.set(s);
    };
    const inner = memoryTransport(relay.accept);
    // The memory transport, noting per connection whether it opened and what welcomes it delivered.
    const transport: Transport = {
      ...inner,
      connect: (sp, tok, handlers, claim, proofs) => {
        const i = seen.get().conns.length;
        update((s) => void s.conns.push({ opened: false, welcomes: 0 }));
        const watched: TransportHandlers = {
          onOpen: (info) => (update((s) => void (s.conns[i]!.opened = true)), handlers.onOpen(info)),
          onMessage: (frame) => {
            if (decodeMessage(frame).type === "welcome") update((s) => void s.conns[i]!.welcomes++);
            handlers.onMessage(frame);
          },
          onClose: (reason, code) => handlers.onClose(reason, code),
        };
        return inner.connect(sp, tok, watched, claim, proofs);
      },
    };

    // The first storage read of the session (the welcome's) waits until the test lets it go.
    const readGate = gate();
    const readEntered = gate();
    let reads = 0;
    const vector = async (spaces?: SpaceId[]): Promise<VersionVector> => {
      if (reads++ === 0) {
        readEntered.open();
        await readGate.wait;
      }
      return db.vector(spaces);
    };
    // The second connection's proofs wait too, so it is not open yet when the old welcome resumes.
    const proofsGate = gate();
    let attempts = 0;
    const proofs = async (): Promise<string[]> => {
      if (attempts++ === 1) await proofsGate.wait;
      return [];
    };

    const session = new SpaceSession({
      space,
      replica: {
        device: db.deviceId,
        vector,
        applyCommits: (commits) => db.applyCommits(commits),
        recordAcks: (s, entries) => recordAcks(db.replica.dexie, s, entries),
        readSnapshot: () => Promise.reject(new Error("not used")),
        importSnapshot: async () => false,
      },
      sealer: new SpaceSealer(db.replica.dexie, space, row.key),
      transport,
      token,
      ...(row.claim && { claim: row.claim }),
      proofs,
      spaceKey: row.key,
      backoff: { baseMs: 1, maxMs: 1 },
      snapshots: { bootstrap: false, publishEvery: 0 },
      hooks: {
        state: (state) =>
          update((s) => {
            s.states.push(state);
            // The current attempt is the last one that asked for proofs; it may not have connected yet.
            if (state === "connected")
              s.connectedOnWelcome.push(s.conns.length === attempts && s.conns.at(-1)!.welcomes > 0);
          }),
        error: () => {},
        synced: () => update((s) => void s.synced++),
        acked: () => {},
      },
    });
    cleanups.push(() => session.stop());
    session.start();

    // The relay welcomed the first connection; its handling waits on the storage read.
    await readEntered.wait;
    expect(seen.get().conns[0]).toEqual({ opened: true, welcomes: 1 });
    // The connection closes (as the settle's reconnect does); the next attempt starts, its proofs held.
    const before = seen.get().states.length;
    session.reconnect();
    await waitFor(seen, (s) => s.states.slice(before).includes("connecting"), 10_000, "the next attempt");
    expect(seen.get().conns).toHaveLength(1);
    // The old welcome resumes and finishes (a job queued behind it runs once it has).
    readGate.open();
    await session.publishSnapshot().catch(() => undefined);
    // The next connection opens; the relay welcomes it; the session must pull on it and say synced.
    proofsGate.open();
    await waitFor(seen, (s) => s.synced > 0, 10_000, "a pull on the new connection to say synced");
    const s = seen.get();
    expect(s.conns).toHaveLength(2);
    expect(s.conns[1]).toEqual({ opened: true, welcomes: 1 });
    // `connected` is said only once the current connection's welcome arrived (never for a connection
    // still being made).
    expect(s.connectedOnWelcome).toEqual([true]);
  });
});
