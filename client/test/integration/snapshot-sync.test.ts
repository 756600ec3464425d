import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/index.ts";
import { decodeMessage } from "../../src/protocol/index.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import type { Transport } from "../../src/transports/transport.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string; ward: string; notes: string };
const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };
let n = 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function device(
  relay: ReturnType<typeof inProcessRelay>,
  snapshots: { bootstrap?: boolean; publishEvery?: number; publishFirst?: number },
  wrap: (t: Transport) => Transport = (t) => t,
) {
  const db = await openDatabase<{ patients: P }>({ name: `snap-sync-${n++}`, collections });
  const stop = () => db.sync({ transports: [wrap(memoryTransport(relay.accept))], snapshots });
  cleanups.push(() => db.close());
  return { db, stop };
}

const count = (db: Database<{ patients: P }>) => db.live(() => db.patients.count());

describe("snapshots through the relay", () => {
  it("a fresh device bootstraps from the snapshot plus the commits after it, equal to one that replayed everything", async () => {
    const relay = inProcessRelay();
    const a = await device(relay, { publishEvery: 0 });
    const space = await a.db.createSpace({ name: "Clinic" });
    const link = await a.db.invite(space, "x:");
    const stopA = a.stop();
    cleanups.push(stopA);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(
        await a.db.transact(async (tx) => {
          let last = "";
          for (let k = 0; k < 10; k++)
            last = await tx.patients.insert({ name: `P${i}-${k}`, ward: "A", notes: `n${i}` }, { space });
          return last;
        }),
      );
    }
    for (const id of ids.slice(0, 5))
      await a.db.patients.update(id, (p) => void (p.notes = `${p.notes} edited`));
    await a.db.patients.delete(ids[5]!);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0 && s.state === "synced", 20_000, "a uploaded");
    expect(await a.db.publishSnapshot(space)).toBe(true);
    // After the snapshot: more commits, which a fresh device must pull as commits.
    for (let i = 0; i < 3; i++) await a.db.patients.update(ids[6 + i]!, (p) => void (p.ward = "B"));
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 20_000, "a uploaded the later commits");

    const fresh = await device(relay, { bootstrap: true, publishEvery: 0 });
    await fresh.db.join(link);
    cleanups.push(fresh.stop());
    const replay = await device(relay, { bootstrap: false, publishEvery: 0 });
    await replay.db.join(link);
    cleanups.push(replay.stop());
    for (const d of [fresh, replay]) await waitFor(count(d.db), (c) => c === 199, 20_000, "all records");
    const total = (await a.db.exportCommits({}, { spaces: [space.id] })).length;
    for (const d of [fresh, replay]) {
      await waitFor(
        d.db.live(() => d.db.vector([space.id])),
        (v) => v[space.id]?.[a.db.deviceId] === total,
        20_000,
        "every commit",
      );
    }
    // The fresh device applied only the commits after the snapshot as commits.
    expect(fresh.db.replica.stats.remoteCommits).toBe(3);
    expect(replay.db.replica.stats.remoteCommits).toBe(total);
    const state = async (db: Database<{ patients: P }>) => ({
      rows: await db.patients.orderBy("id").toArray(),
      vector: await db.vector([space.id]),
      history: await Promise.all(
        ids.map(async (id) => (await db.patients.history(id)).map((h) => [h.commit, h.op, h.paths]).sort()),
      ),
    });
    expect(await state(fresh.db)).toEqual(await state(replay.db));
    expect(await state(fresh.db)).toEqual(await state(a.db));
    // A full node: it holds every commit as its author signed it, so it can forward all of them (a file
    // here; a wiped relay or a peer alike), and its history says each one is verified.
    const file = await fresh.db.exportBundle({ space });
    const other = await device(relay, { bootstrap: false, publishEvery: 0 });
    await other.db.join(link);
    expect((await other.db.importBundle(file)).applied).toHaveLength(total);
    expect((await fresh.db.patients.history(ids[0]!)).every((h) => h.verified)).toBe(true);
  });

  it("devices publish snapshots by themselves every N commits, and an older one never replaces a newer one", async () => {
    const relay = inProcessRelay();
    const a = await device(relay, { publishEvery: 10 });
    const space = await a.db.createSpace({ name: "Auto" });
    cleanups.push(a.stop());
    for (let i = 0; i < 12; i++)
      await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    await waitFor(
      a.db.status,
      (s) => s.transports.some((t) => t.lastSnapshotAt !== undefined),
      20_000,
      "a snapshot published",
    );
    const stored = async () => (await relay.store.getSnapshot(space.id))?.vector.get(a.db.deviceId) ?? 0;
    expect(await stored()).toBeGreaterThanOrEqual(10);
    // A device that holds less may not replace it.
    const b = await device(relay, { bootstrap: false, publishEvery: 0 });
    await b.db.join(await a.db.invite(space, "x:"));
    cleanups.push(b.stop());
    // Synced in the shared space itself (its session starts a moment after the join).
    await waitFor(
      b.db.status,
      (s) =>
        s.state === "synced" &&
        s.transports.some((t) => t.space === space.id && t.lastSyncedAt !== undefined),
      20_000,
      "b synced in the shared space",
    );
    const before = await relay.store.getSnapshot(space.id);
    expect(await b.db.publishSnapshot(space)).toBe(
      before!.vector.get(a.db.deviceId)! <= (await b.db.vector([space.id]))[space.id]![a.db.deviceId]!,
    );
    expect((await relay.store.getSnapshot(space.id))!.vector.get(a.db.deviceId)).toBeGreaterThanOrEqual(
      before!.vector.get(a.db.deviceId)!,
    );
  });

  it("with publishFirst 10 a small space gets its first snapshot at 10 commits and the next once its log doubled, also across restarts", async () => {
    const relay = inProcessRelay();
    // Every snapshot the writer publishes: the commits its vector covers (first part of each).
    const published: number[] = [];
    const counting = (t: Transport): Transport => ({
      ...t,
      connect: (space, token, handlers, claim, proofs) => {
        const conn = t.connect(space, token, handlers, claim, proofs);
        return {
          send(frame) {
            const m = decodeMessage(frame);
            if (m.type === "snapshot-put" && m.part === 0)
              published.push(m.vector.reduce((s, e) => s + e.seq, 0));
            conn.send(frame);
          },
          get bufferedAmount() {
            return conn.bufferedAmount;
          },
          close: (reason) => conn.close(reason),
        };
      },
    });
    const a = await device(relay, { publishFirst: 10 }, counting);
    const space = await a.db.createSpace({ name: "Small" });
    const total = async () =>
      Object.values((await a.db.vector([space.id]))[space.id] ?? {}).reduce((s, x) => s + x, 0);
    let stop = a.stop();
    for (let i = 0; i < 12; i++)
      await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    const stored = async () =>
      [...((await relay.store.getSnapshot(space.id))?.vector.values() ?? [])].reduce((s, x) => s + x, 0);
    const snapshotAt = () => a.db.status.get().transports.find((t) => t.space === space.id)?.lastSnapshotAt;
    await waitFor(a.db.status, () => snapshotAt() !== undefined, 20_000, "the first snapshot");
    expect(await stored()).toBeGreaterThanOrEqual(10);
    const firstAt = snapshotAt();
    expect(published).toHaveLength(1);
    const first = published[0]!;
    expect(first).toBeGreaterThanOrEqual(10);
    // A new session (as after a reload): it remembers the snapshot and does not publish it again.
    stop();
    stop = a.stop();
    cleanups.push(() => stop());
    while ((await total()) < 2 * first + 1) {
      await a.db.patients.insert({ name: "later", ward: "B", notes: "" }, { space });
      await waitFor(a.db.status, (s) => s.pendingCommits === 0, 20_000, "uploaded");
    }
    await waitFor(a.db.status, () => (snapshotAt() ?? firstAt) !== firstAt, 20_000, "the second snapshot");
    expect(await stored()).toBeGreaterThanOrEqual(2 * first);
    expect(published).toHaveLength(2);
    expect(published[1]).toBeGreaterThanOrEqual(2 * first);
    // A fresh device bootstraps from it: only the commits after the snapshot arrive as commits.
    const fresh = await device(relay, { publishEvery: 0 });
    await fresh.db.join(await a.db.invite(space, "x:"));
    cleanups.push(fresh.stop());
    const rows = await a.db.patients.count();
    await waitFor(count(fresh.db), (c) => c === rows, 20_000, "the fresh device has every record");
    expect(fresh.db.replica.stats.remoteCommits).toBeLessThan((await total()) - published[1]! + 1);
  });
});
