// Crash test (issue 6): the relay process is killed with SIGKILL at seeded random points of a long
// upload, five times, and restarted each time on the same port and data directory. Nothing it
// acknowledged is ever lost (checked in its sqlite file after every kill), and the clients finish by
// themselves: the uploader's commits all end up acknowledged and the other device holds everything.
// Replay one schedule with SHOAL_SIGKILL_SEED=<seed>.
import { afterEach, describe, expect, it } from "vitest";
import { decodeMessage, MESSAGE_TYPE_BYTES, toHex } from "../../src/protocol/index.ts";
import type { Transport, TransportHandlers } from "../../src/transports/transport.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import { ValueStore } from "../../src/live/value-store.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  relayTransport,
  storedSeqs,
  type Patient,
} from "../relay-harness.ts";

const SEED = Number(process.env.SHOAL_SIGKILL_SEED ?? 31337);
const KILLS = 5;
const TOTAL = 1000;

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/**
 * Wraps a transport to watch one device's upload: `onSent` after each `commits` frame the engine sends,
 * `onAck` with each `ack` entry received (before the engine sees it). Every ack entry is kept in `acks`.
 */
function watchedTransport(
  inner: Transport,
  hooks: { onSent(): void; onAck(device: string, seq: number): void },
) {
  const acks = new ValueStore<{ device: string; seq: number }[]>([]);
  const transport: Transport = {
    kind: inner.kind,
    label: inner.label,
    connect(space, token, handlers: TransportHandlers, claim) {
      const watched: TransportHandlers = {
        onOpen: () => handlers.onOpen(),
        onMessage: (frame) => {
          if (frame[1] === MESSAGE_TYPE_BYTES.ack) {
            const m = decodeMessage(frame);
            if (m.type === "ack") {
              const seen = m.entries.map((e) => ({ device: toHex(e.device), seq: e.seq }));
              acks.set([...acks.get(), ...seen]);
              for (const e of seen) hooks.onAck(e.device, e.seq);
            }
          }
          handlers.onMessage(frame);
        },
        onClose: (reason, code) => handlers.onClose(reason, code),
      };
      const conn = inner.connect(space, token, watched, claim);
      return {
        send(frame: Uint8Array) {
          conn.send(frame);
          if (frame[1] === MESSAGE_TYPE_BYTES.commits) hooks.onSent();
        },
        get bufferedAmount() {
          return conn.bufferedAmount;
        },
        close: (reason?: string) => conn.close(reason),
      };
    },
  };
  return { transport, acks };
}

describe("relay killed with SIGKILL again and again during a long upload", () => {
  it(`loses nothing acknowledged over ${KILLS} seeded kills, and the clients finish by themselves`, async () => {
    const rnd = seededRandom(SEED);
    // Where each kill happens, spread over the upload: once the relay has acknowledged at least `after`
    // commits, right after its next ack, or right after the client's next commits frame (which may or
    // may not reach the relay).
    const afters = Array.from({ length: KILLS }, () => rnd.int(TOTAL - 250)).sort((x, y) => x - y);
    const schedule = afters.map((after) => ({ on: rnd.pick(["ack", "sent"] as const), after }));
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await openDevice<{ patients: Patient }>("sigkill-a", patientCollections);
    const b = await openDevice<{ patients: Patient }>("sigkill-b", patientCollections);
    const space = await a.db.createSpace({ name: "Kill ward" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    const notes = "Observation of the day. ".repeat(40);
    // Queued together, the inserts share IndexedDB transactions (the writer coalesces them): 1,000 commits.
    await Promise.all(
      Array.from({ length: TOTAL }, (_, i) =>
        a.db.patients.insert(
          { name: `P${String(i).padStart(4, "0")}`, ward: "A", notes: `${i} ${notes}` },
          { space },
        ),
      ),
    );
    expect((await a.db.vector([space.id]))[space.id]?.[a.db.deviceId]).toBe(TOTAL);
    const backoff = { baseMs: 50, maxMs: 1000 };
    b.db.sync({ transports: [relayTransport(relay.url)], backoff });

    const kills: { at: string; acked: number; stored: number }[] = [];
    let armed = 0; // index into schedule of the next kill
    let killing: Promise<unknown> | null = null;
    const fire = () => {
      if (killing || armed >= KILLS || !relay.running) return;
      if (ackedSoFar() < schedule[armed]!.after) return;
      killing = relay.killNow();
      tick.set(tick.get() + 1);
    };
    const tick = new ValueStore(0); // bumped on every kill and every ack: what the waits below watch
    const { transport, acks } = watchedTransport(relayTransport(relay.url), {
      onSent: () => schedule[armed]?.on === "sent" && fire(),
      onAck: (device) => {
        if (device === a.db.deviceId && schedule[armed]?.on === "ack") fire();
        tick.set(tick.get() + 1);
      },
    });
    const ackedSoFar = () =>
      Math.max(
        0,
        ...acks
          .get()
          .filter((e) => e.device === a.db.deviceId)
          .map((e) => e.seq),
      );
    a.db.sync({ transports: [transport], backoff });

    while (armed < KILLS) {
      await waitFor(
        tick,
        () => killing !== null || ackedSoFar() >= TOTAL,
        30_000,
        `kill ${armed + 1} (seed ${SEED})`,
      );
      if (killing === null) break; // the upload finished before this kill point: no more to kill
      expect(await killing).toBe("SIGKILL");
      // Acks already on their way when the process died still count: they promised durability.
      await waitFor(
        a.db.status,
        (s) => s.transports.every((t) => t.state !== "connected"),
        10_000,
        "a to see the relay gone",
      );
      const acked = ackedSoFar();
      const stored = storedSeqs(relay.sqliteFile, space.id, a.db.deviceId);
      expect(
        stored.slice(0, acked),
        `seed ${SEED}, kill ${armed + 1}: an acknowledged commit is missing`,
      ).toEqual(Array.from({ length: acked }, (_, i) => i + 1));
      // Whatever else is stored is the next commits in order, never a torn or foreign one.
      expect(stored, `seed ${SEED}, kill ${armed + 1}`).toEqual(
        Array.from({ length: stored.length }, (_, i) => i + 1),
      );
      kills.push({
        at: `${schedule[armed]!.on} after ${schedule[armed]!.after}`,
        acked,
        stored: stored.length,
      });
      armed++;
      killing = null;
      await relay.restart(); // same port, same data directory; nothing nudges the clients
    }
    console.log(
      `relay SIGKILL seed ${SEED}: ${kills.map((k) => `[${k.at}: acked ${k.acked}, stored ${k.stored}]`).join(" ")}`,
    );
    expect(kills.length, `seed ${SEED}: the upload ended before ${KILLS} kills`).toBe(KILLS);

    await waitFor(
      b.db.patients.live((c) => c.count()),
      (x) => x === TOTAL,
      60_000,
      `b to receive all ${TOTAL}`,
    );
    await relayAcknowledged(a.db, space.id, 60_000);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 30_000, "a: nothing pending");
    expect(await b.db.vector([space.id])).toEqual(await a.db.vector([space.id]));
    await relay.stop("SIGTERM");
    expect(storedSeqs(relay.sqliteFile, space.id, a.db.deviceId)).toEqual(
      Array.from({ length: TOTAL }, (_, i) => i + 1),
    );
    // A hang guard, not a timing claim: 20-30 s alone, over 60 s once on a machine shared with other runs.
  }, 180_000);
});
