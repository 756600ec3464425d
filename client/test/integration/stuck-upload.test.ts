// Found by the hostile fuzzer's soak (seed 10068): an author whose upload was damaged on its way to the
// relay stayed `syncing` with its own commit `stuck` (`Relay:chain`) although the relay held every
// commit. Two ways there, each tested here through an in-process relay and a tap on the author's link:
// - the relay stored the re-uploaded commit, but the `ack` was lost with the connection; the next
//   connection's `welcome` showed the relay holding it, and nothing cleared the stuck entry;
// - the replacement itself was damaged on its way; the replacement was asked once per connection, so
//   the author stayed stuck until a reconnect.
// Since commits are signed the relay refuses damage in transit (`signature`), so the damaged copy the
// relay holds is made here by damaging it in the relay's store (bit rot, or a bug), as transit damage
// used to.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type SyncStatus } from "../../src/index.ts";
import { sha256 } from "../../src/crypto/seal.ts";
import { decodeMessage, decodeSealedCommit, toHex, type Message } from "../../src/protocol/index.ts";
import type { Transport, TransportHandlers } from "../../src/transports/transport.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string };
const collections = { patients: { indexes: "id, name" } };
let n = 0;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What a tap does with one frame: pass it (maybe changed), lose it, or cut the connection instead. */
type TapVerdict = Uint8Array | "drop" | "cut";
type Tap = (direction: "up" | "down", frame: Uint8Array, m: Message) => TapVerdict;

/** A frame seen by the tap (before its verdict), for `frameSeen`. */
type Seen = (direction: "up" | "down", m: Message) => boolean;

/**
 * A transport to `relay` whose frames, both ways, go through `tap` first; `watchers` are told of each
 * frame the tap sees.
 */
function tappedTransport(
  relay: ReturnType<typeof inProcessRelay>,
  tap: () => Tap,
  watchers: Set<Seen>,
): Transport {
  const inner = memoryTransport(relay.accept);
  const seen = (d: "up" | "down", m: Message) => {
    for (const w of [...watchers]) if (w(d, m)) watchers.delete(w);
  };
  return {
    kind: "relay",
    label: "tapped",
    connect(space, token, handlers, claim) {
      const tapped: TransportHandlers = {
        onOpen: () => handlers.onOpen(),
        onClose: (reason, code) => handlers.onClose(reason, code),
        onMessage: (frame) => {
          const m = decodeMessage(frame);
          seen("down", m);
          const out = tap()("down", frame, m);
          if (out === "cut") conn.close("tap cut");
          else if (out !== "drop") handlers.onMessage(out);
        },
      };
      const conn = inner.connect(space, token, tapped, claim);
      return {
        send: (frame) => {
          const m = decodeMessage(frame);
          seen("up", m);
          const out = tap()("up", frame, m);
          if (out === "cut") conn.close("tap cut");
          else if (out !== "drop") conn.send(out);
        },
        get bufferedAmount() {
          return conn.bufferedAmount;
        },
        close: (reason) => conn.close(reason),
      };
    },
  };
}

/** The frame with one bit flipped in its last byte: inside the last commit's signature. */
function damaged(frame: Uint8Array): Uint8Array {
  const copy = frame.slice();
  copy[copy.length - 1]! ^= 0x01;
  return copy;
}

const pass: Tap = (_d, frame) => frame;

/**
 * Damages commit `seq` of `device` in the relay's store (one bit of its signature; the stored hash
 * follows, as for a copy damaged before it was stored), bypassing the relay's checks.
 */
async function damageAtRelay(
  relay: ReturnType<typeof inProcessRelay>,
  space: string,
  device: string,
  seq: number,
): Promise<void> {
  const read = await relay.store.read(space, new Map([[device, seq - 1]]), {
    maxBytes: 1 << 20,
    maxCount: 1,
  });
  const bad = read.commits[0]!.slice();
  bad[bad.length - 1]! ^= 0x01;
  const { header } = decodeSealedCommit(bad);
  const result = await relay.store.replace(space, {
    device,
    seq,
    prevHash: header.prevHash,
    hash: await sha256(bad),
    bytes: bad,
  });
  expect(result.verdict).toBe("replaced");
}

async function author(relay: ReturnType<typeof inProcessRelay>, tap: { current: Tap }) {
  const db = await openDatabase<{ patients: P }>({
    name: `stuck-upload-${n++}`,
    collections,
    persist: false,
  });
  const watchers = new Set<Seen>();
  /** Resolves when the relay sends an ack of this device's commit `seq` (delivered or cut), or rejects. */
  const acked = (seq: number, timeoutMs = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the relay never acked commit ${seq}`)), timeoutMs);
      watchers.add((d, m) => {
        const hit =
          d === "down" &&
          m.type === "ack" &&
          m.entries.some((e) => e.seq >= seq && toHex(e.device) === db.deviceId);
        if (hit) (clearTimeout(timer), resolve());
        return hit;
      });
    });
  const stop = db.sync({
    transports: [tappedTransport(relay, () => tap.current, watchers)],
    backoff: { baseMs: 5, maxMs: 50 },
  });
  cleanups.push(async () => {
    stop();
    await db.close();
  });
  return { db, acked };
}

const synced = (s: SyncStatus) => s.state === "synced" && s.pendingCommits === 0 && !s.stuck?.length;

/**
 * An author syncing with an in-process relay through a tap, whose commits 1 and 2 the relay stored and
 * acknowledged, commit 2 then damaged in the relay's store.
 */
async function damagedSecondCommit(name: string) {
  const relay = inProcessRelay();
  const tap = { current: pass };
  const { db, acked } = await author(relay, tap);
  const space = await db.createSpace({ name });
  for (const [seq, patient] of [
    [1, "One"],
    [2, "Two"],
  ] as const) {
    const ack = acked(seq);
    await db.patients.insert({ name: patient }, { space });
    await ack;
  }
  await damageAtRelay(relay, space.id, db.deviceId, 2);
  return { relay, tap, db, acked, space };
}

describe("an own upload the relay refused (chain) after a damaged upload", () => {
  it("is no longer stuck once a new connection's welcome shows the relay holds it (its ack was lost)", async () => {
    // Commit 2 is stored and acknowledged, then damaged in the relay's store.
    const { relay, tap, db, acked, space } = await damagedSecondCommit("Lost ack");

    // Commit 3: refused (chain), the author replaces 2 and uploads 3 again, the relay stores it, and the
    // ack of 3 is lost with the connection.
    let cut = 0;
    let welcomes = 0;
    tap.current = (d, frame, m) => {
      if (d === "down" && m.type === "ack" && cut === 0 && m.entries.some((e) => e.seq >= 3))
        return (cut++, "cut");
      if (d === "down" && m.type === "welcome") welcomes++;
      return frame;
    };
    const ack = acked(3);
    await db.patients.insert({ name: "Three" }, { space });
    await ack;
    expect(cut).toBe(1);
    expect((await relay.store.vector(space.id)).get(db.deviceId)).toBe(3);
    // The next connection's welcome says the relay holds 3: nothing is stuck, nothing pending.
    const s = await waitFor(
      db.status,
      (x) => welcomes > 0 && synced(x),
      10_000,
      "the author synced, nothing stuck",
    );
    expect(s.stuck ?? []).toEqual([]);
  });

  it("asks again to replace the damaged copy when the replacement was damaged too", async () => {
    // Commit 2 is damaged at the relay once stored, and the first replacement of it on its way.
    const { relay, tap, db, acked, space } = await damagedSecondCommit("Damaged replacement");
    let replacements = 0;
    let welcomes = 0;
    tap.current = (d, frame, m) => {
      if (d === "up" && m.type === "commits" && m.replace && replacements++ === 0) return damaged(frame);
      if (d === "down" && m.type === "welcome") welcomes++;
      return frame;
    };
    // On the same connection (no new welcome): refused (chain), replaced (damaged: refused as
    // `signature`), refused again, replaced again.
    const ack = acked(3);
    await db.patients.insert({ name: "Three" }, { space });
    await ack;
    await waitFor(db.status, synced, 10_000, "the author synced, nothing stuck");
    // At least the damaged replacement and a good one (the `signature` refusal of the damaged one may
    // send commit 3 once more, refused as `chain` again, before the good replacement is acked).
    expect(replacements).toBeGreaterThanOrEqual(2);
    expect(welcomes).toBe(0);
    const read = await relay.store.read(space.id, new Map([[db.deviceId, 1]]), {
      maxBytes: 1 << 20,
      maxCount: 1,
    });
    const own = await db.replica.dexie.table("_sealed").get([space.id, db.deviceId, 2]);
    expect(toHex(read.commits[0]!)).toBe(toHex(own.bytes));
    expect((await relay.store.vector(space.id)).get(db.deviceId)).toBe(3);
  });

  // Found by the soak too (seed 10170): a device whose last commit came back damaged asked for its
  // replacement and said `synced` at once; gone right then, it left the damaged copy for good.
  // Flaky under load (2 of about 7 full runs on 2026-12-06, also before signed commits): it ended with no
  // replacement asked, the status `synced` while the relay's copy was still damaged: the own-head check
  // after a reconnect seems not always asked or answered before `synced`. One cause found on 2026-12-07
  // (it failed three times in a row in a full run): a pull begun on the closing connection resumed
  // after the reconnect and marked the next connection's own-head check as asked; fixed, and tested in
  // stale-welcome.test.ts. The retries stay until more full runs show it was the only one.
  it(
    "says synced only once the relay serves its last commit intact (the first replacement was lost)",
    { retry: 2 },
    async () => {
      const { relay, tap, db, space } = await damagedSecondCommit("Lost replacement");

      // No next commit: the next connection fetches commit 2 back (damaged) and asks to replace it; the
      // first replacement is lost on the way.
      let replacements = 0;
      let welcomes = 0;
      tap.current = (d, frame, m) => {
        if (d === "down" && m.type === "welcome") welcomes++;
        return d === "up" && m.type === "commits" && m.replace && replacements++ === 0 ? "drop" : frame;
      };
      // Counted from the new connection's welcome: a status still left from the old connection (a late
      // `syncing` after its last ack, then `synced`) must not count (it made this test flaky under load).
      let unsynced = false;
      const sub = db.status.subscribe(
        (st) => void (welcomes > 0 && st.state !== "synced" && (unsynced = true)),
      );
      cleanups.push(() => sub.unsubscribe());
      db.reconnect();
      await waitFor(
        db.status,
        (st) => welcomes > 0 && unsynced && synced(st),
        10_000,
        "the author synced again",
      );
      // When it says so, the relay holds its intact commit 2.
      const stored = await relay.store.read(space.id, new Map([[db.deviceId, 1]]), {
        maxBytes: 1 << 20,
        maxCount: 10,
      });
      const own = await db.replica.dexie.table("_sealed").get([space.id, db.deviceId, 2]);
      expect(replacements).toBeGreaterThanOrEqual(2);
      expect(toHex(stored.commits[0]!)).toBe(toHex(own.bytes));
    },
  );
});
