// Issue 16, relay compaction with two admins, through a real relay process (SQLite store): a `compact`
// operation that meets a snapshot other than its own (another admin's, or none when the relay lost it)
// is stored all the same, and the relay drops only what its snapshot covers, so no device's later
// commits wait behind it. A's compaction is paused right after its snapshot is stored (the `publish`
// seam of `compactSpace`, which `db.compact` calls with the running sync's), which fixes the
// interleaving: A's snapshot, then B's snapshot and operation (or the relay losing its snapshot), then
// A's operation.
import Sqlite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { Database, SpaceId } from "../../src/index.ts";
import { compactSpace, type Compaction } from "../../src/spaces/compact-space.ts";
import { waitFor } from "../wait-for.ts";
import { patientNamed as named, storeBytes } from "../compaction-waits.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  relayTransport,
  type Patient,
} from "../relay-harness.ts";
import { MESSAGE_TYPE_BYTES } from "../../src/protocol/index.ts";
import type { Transport, TransportHandlers } from "../../src/transports/transport.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

const rows = async (db: Db) =>
  (await db.patients.toArray()).map((p) => `${p.name}|${p.ward}|${p.notes}`).sort();

/** Resolves once `db` holds `n` records. */
const holds = (db: Db, n: number, what: string) =>
  waitFor(
    db.live(() => db.patients.count()),
    (count) => count === n,
    30_000,
    what,
  );

/** Resolves once `x` holds every commit of `space` that `y` holds now. */
async function caughtUp(x: Db, y: Db, space: SpaceId): Promise<void> {
  const want = (await y.vector([space]))[space] ?? {};
  await waitFor(
    x.live(() => x.vector([space])),
    (v) => Object.entries(want).every(([dev, seq]) => (v[space]?.[dev] ?? 0) >= seq),
    30_000,
    `${x.deviceId.slice(0, 8)} to catch up with ${y.deviceId.slice(0, 8)}`,
  );
}

/**
 * `db.compact` for `db`, paused once its snapshot is stored: `stored` resolves then, and the rest (the
 * hold wait and the signed operation) goes on only after `release()`.
 */
function pausedCompact(db: Db, space: SpaceId) {
  let stored!: () => void;
  let release!: () => void;
  const storedP = new Promise<void>((r) => (stored = r));
  const released = new Promise<void>((r) => (release = r));
  const done: Promise<Compaction> = compactSpace(db.replica, space, async (s) => {
    const ok = await db.publishSnapshot(s);
    stored();
    await released;
    return ok;
  });
  return { stored: storedP, release, done };
}

/**
 * The relay transport, but the `commits` frames the relay sends wait (in order) until `release()`: a
 * device that is connected and answered, but has not received the others' latest commits yet.
 */
function slowCommits(url: string): Transport & { release(): void } {
  const inner = relayTransport(url);
  let held: { deliver: () => void }[] | null = [];
  return {
    kind: inner.kind,
    label: inner.label,
    release() {
      const waiting = held ?? [];
      held = null;
      for (const w of waiting) w.deliver();
    },
    connect(space, token, handlers: TransportHandlers, claim, proofs) {
      return inner.connect(
        space,
        token,
        {
          onOpen: (info) => handlers.onOpen(info),
          onMessage: (frame) => {
            if (held && frame[1] === MESSAGE_TYPE_BYTES.commits)
              held.push({ deliver: () => handlers.onMessage(frame) });
            else handlers.onMessage(frame);
          },
          onClose: (reason, code) => handlers.onClose(reason, code),
        },
        claim,
        proofs,
      );
    },
  };
}

/** A space with admins A (creator) and B and a writer C, each online, A and B with records. */
async function clinic(relay: RelayHarness, name: string) {
  const [a, b, c] = await Promise.all([device("admin-a"), device("admin-b"), device("writer-c")]);
  for (const x of [a, b, c]) x.online(relay.url);
  const space = await a.db.createSpace({ name });
  const toB = await a.db.invite(space, { role: "admin", me: "Dr. A" });
  const toC = await a.db.invite(space, { role: "writer" });
  await relayAcknowledged(a.db, space.id);
  await b.db.join(toB, { name: "Dr. B", relay: relay.url });
  await c.db.join(toC, { name: "Nurse C", relay: relay.url });
  const ids: string[] = [];
  for (const [x, who] of [
    [a, "A"],
    [b, "B"],
  ] as const)
    for (let i = 0; i < 8; i++) {
      const id = await x.db.patients.insert(
        { name: `${who}${i}`, ward: "A", notes: `${who}-${i}` },
        { space },
      );
      for (let k = 0; k < 3; k++) await x.db.patients.update(id, (p) => void (p.notes += "."));
      ids.push(id);
    }
  for (const x of [a, b]) await relayAcknowledged(x.db, space.id);
  // Everyone holds every commit, so B's snapshot dominates A's (the relay keeps the newer one only).
  for (const x of [a, b, c]) for (const y of [a, b, c]) await caughtUp(x.db, y.db, space.id);
  return { a, b, c, space, ids };
}

/** Both admins' later writes reach C; every device converges; a fresh device gets every record. */
async function afterwards(relay: RelayHarness, s: Awaited<ReturnType<typeof clinic>>, records: number) {
  const { a, b, c, space } = s;
  await a.db.patients.insert({ name: "A after", ward: "B", notes: "" }, { space });
  await b.db.patients.insert({ name: "B after", ward: "B", notes: "" }, { space });
  for (const x of [a, b]) await relayAcknowledged(x.db, space.id);
  for (const x of [a, b, c]) {
    await named(x.db, "A after");
    await named(x.db, "B after");
  }
  const all = records + 2;
  for (const x of [a, b, c]) await holds(x.db, all, "convergence");
  expect(await rows(b.db)).toEqual(await rows(a.db));
  expect(await rows(c.db)).toEqual(await rows(a.db));
  // A fresh device (a new member) starts from what the relay holds and gets every record.
  const toD = await a.db.invite(space, { role: "reader" });
  await relayAcknowledged(a.db, space.id);
  const d = await device("fresh-d");
  d.online(relay.url);
  await d.db.join(toD, { name: "Tablet D", relay: relay.url });
  await holds(d.db, all, "the fresh device to hold every record");
  expect(await rows(d.db)).toEqual(await rows(a.db));
  return d;
}

describe("two admins compacting at once", () => {
  it("A's snapshot, then B's snapshot and operation, then A's operation: nothing is stuck or lost", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const s = await clinic(relay, "Twin Clinic");
    const { a, b, space } = s;
    const before = await storeBytes(relay);

    const paused = pausedCompact(a.db, space.id);
    await paused.stored;
    const ofB = await b.db.compact(space);
    await relayAcknowledged(b.db, space.id);
    paused.release();
    const ofA = await paused.done;
    await relayAcknowledged(a.db, space.id);
    // A's vector is below B's: the relay's snapshot (B's) covers it, and it was carried out as far.
    for (const [dev, seq] of Object.entries(ofA.vector))
      expect(ofB.vector[dev] ?? 0).toBeGreaterThanOrEqual(seq);
    expect(ofA.snapshot).not.toBe(ofB.snapshot);
    expect(await storeBytes(relay)).toBeLessThan(before);

    const d = await afterwards(relay, s, s.ids.length);
    // D started from B's snapshot: it holds none of A's data commits below the compaction.
    const low = await d.db.replica.dexie
      .table("_commits")
      .where("[space+device+seq]")
      .between(
        [space.id, a.db.deviceId, 0],
        [space.id, a.db.deviceId, ofB.vector[a.db.deviceId]!],
        true,
        true,
      )
      .count();
    expect(low).toBeLessThan(ofB.vector[a.db.deviceId]!);
  });

  it("an operation the relay's snapshot does not cover (it lost it) is stored, and A's later commits go on", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const s = await clinic(relay, "Lost Base Clinic");
    const { a, space } = s;
    const paused = pausedCompact(a.db, space.id);
    await paused.stored;
    // The relay's data comes back without its snapshot (a restored backup that predates it): A's
    // operation will name a vector no stored snapshot covers.
    await relay.stop();
    const db = new Sqlite(relay.sqliteFile, { fileMustExist: true });
    try {
      expect(db.prepare("DELETE FROM snapshots WHERE space = ?").run(space.id).changes).toBe(1);
    } finally {
      db.close();
    }
    await relay.restart();
    for (const x of [s.a, s.b, s.c]) x.db.reconnect();
    paused.release();
    await paused.done;
    // Stored (a refusal would stop every later commit of A's here, for good), and nothing dropped.
    await relayAcknowledged(a.db, space.id);
    await afterwards(relay, s, s.ids.length);
  });

  it("B's snapshot that does not dominate A's is refused: CompactionError, nothing signed; it compacts after syncing", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const s = await clinic(relay, "Busy Clinic");
    const { a, b, space } = s;
    // B is connected but has not received A's latest commit when both compact.
    const slow = slowCommits(relay.url);
    b.online(relay.url, slow);
    await a.db.patients.insert({ name: "A late", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    const paused = pausedCompact(a.db, space.id);
    await paused.stored;
    const refused = await b.db.compact(space).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "CompactionError" });
    // The relay kept A's snapshot (`stale-snapshot`): B's names fewer of A's commits.
    expect((refused as Error).message).toContain("did not store this device's snapshot");
    const ops = async () =>
      (await b.db.replica.dexie.table<{ op: string }>("_members").toArray()).filter((r) =>
        r.op.includes('"kind":"compact"'),
      ).length;
    expect(await ops()).toBe(0);
    // B catches up; now its snapshot dominates A's, and both compactions go through.
    slow.release();
    await named(b.db, "A late");
    const ofB = await b.db.compact(space);
    paused.release();
    const ofA = await paused.done;
    for (const [dev, seq] of Object.entries(ofA.vector))
      expect(ofB.vector[dev] ?? 0).toBeGreaterThanOrEqual(seq);
    for (const x of [a, b]) await relayAcknowledged(x.db, space.id);
    await afterwards(relay, s, s.ids.length + 1);
  });
});
