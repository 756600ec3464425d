// Storage faults (issue 6): a quota or I/O failure injected at the k-th IndexedDB write, for EVERY k of a
// local commit and of an incoming batch, once and "forever". Each time the commit or batch must be fully
// absent (rows, _docs, _commits, _vectors, _pending unchanged), the error typed, no sequence number
// taken; once storage works again the same write succeeds and the replica equals a clean one. Then the
// same during real sync through an in-process relay: a receiver hits quota mid-sync, reports it in
// `db.status.lastError`, keeps its data whole, and converges after `reconnect()`.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, QuotaExceeded, type Database, type SpaceId } from "../../src/index.ts";
import type { Commit } from "../../src/replica/commit.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string; ward: string; n: number };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", counters: ["n"] } };
let seq = 0;
const open = (label: string) =>
  openDatabase<{ patients: P }>({
    name: `faults-${label}-${process.pid}-${seq++}`,
    collections,
    persist: false,
  });

const realPut = IDBObjectStore.prototype.put;
const realAdd = IDBObjectStore.prototype.add;
const realDelete = IDBObjectStore.prototype.delete;
function restoreWrites(): void {
  IDBObjectStore.prototype.put = realPut;
  IDBObjectStore.prototype.add = realAdd;
  IDBObjectStore.prototype.delete = realDelete;
}
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  restoreWrites();
  for (const c of cleanups.splice(0).reverse()) await c();
});

type FaultKind = "quota" | "io";
const faultError = (kind: FaultKind) =>
  kind === "quota"
    ? new DOMException("The quota has been exceeded.", "QuotaExceededError")
    : new DOMException("An unknown error occurred within Indexed Database.", "UnknownError");

/**
 * Patches put/add/delete of every object store so that writes to the database `dbName` are counted and
 * the k-th (and, `forever`, every later one) throws the browser's error. k = Infinity only counts.
 */
function injectWriteFault(
  dbName: string,
  k: number,
  kind: FaultKind,
  forever = false,
): { writes(): number; failed(): number } {
  let count = 0;
  let failed = 0;
  const wrap = <F extends (...args: never[]) => unknown>(real: F) =>
    function (this: IDBObjectStore, ...args: Parameters<F>) {
      if (this.transaction.db.name === dbName) {
        count++;
        if (count === k || (forever && count >= k)) {
          failed++;
          throw faultError(kind);
        }
      }
      return real.apply(this, args);
    };
  IDBObjectStore.prototype.put = wrap(realPut) as typeof realPut;
  IDBObjectStore.prototype.add = wrap(realAdd) as typeof realAdd;
  IDBObjectStore.prototype.delete = wrap(realDelete) as typeof realDelete;
  return { writes: () => count, failed: () => failed };
}

/** Everything a commit or batch may touch, read raw from IndexedDB (through Dexie), in key order. */
async function snapshot(db: Db): Promise<string> {
  const d = db.replica.dexie;
  const dump = async (t: string) =>
    JSON.stringify(await d.table(t).toArray(), (_, v) =>
      v instanceof Uint8Array ? Array.from(v).join(",") : v,
    );
  const parts: Record<string, string> = {};
  for (const t of ["patients", "_docs", "_vectors", "_pending", "_sealed", "_spaces"])
    parts[t] = await dump(t);
  // `pos` is this replica's causal order (auto-increment), which differs between replicas: leave it out.
  parts._commits = JSON.stringify(
    (await d.table("_commits").toArray()).map(({ pos: _pos, ...c }) => c),
    (_, v) => (v instanceof Uint8Array ? Array.from(v).join(",") : v),
  );
  return JSON.stringify(parts);
}

/** What a replica shows of its data, comparable across replicas (no storage order, no device id). */
async function visibleState(db: Db, space: SpaceId): Promise<string> {
  const rows = await db.patients.orderBy("id").toArray();
  const heads = (await db.replica.dexie.table("_docs").toArray())
    .filter((r: { space: string }) => r.space === space)
    .map(
      (r: { id: string; heads: string[]; deleted: number }) =>
        `${r.id}:${r.deleted}:${[...r.heads].sort().join(",")}`,
    )
    .sort();
  const commits = (await db.exportCommits({}, { spaces: [space] })).map((c) => c.id).sort();
  return JSON.stringify({ rows, heads, commits, vector: (await db.vector([space]))[space] ?? {} });
}

function isTyped(e: unknown, kind: FaultKind): boolean {
  if (kind === "quota") return e instanceof QuotaExceeded && (e as QuotaExceeded).code === "QuotaExceeded";
  // An I/O failure is not a quota: it must say what it is (UnknownError) somewhere in its chain.
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 6; depth++) {
    const x = cur as { name?: string; message?: string; inner?: unknown; cause?: unknown };
    if (x.name === "UnknownError" || /UnknownError|unknown error/i.test(x.message ?? ""))
      return !(e instanceof QuotaExceeded);
    cur = x.inner ?? x.cause;
  }
  return false;
}

/**
 * A source replica with a shared space: inserts, updates, a counter, a multi-record transaction and a
 * delete, so a batch touches new and existing documents, row puts and row deletes. `base` commits are
 * applied to every target first (so the batch updates and deletes records the target already holds);
 * `batch` is the incoming batch under test (one apply chunk: fewer than 64 record changes).
 */
async function incomingFixture() {
  const a = await open("source");
  cleanups.push(() => a.close());
  const space = await a.createSpace({ name: "Ward" });
  const link = await a.invite(space, "https://app.example/");
  const ids: string[] = [];
  for (let i = 0; i < 4; i++)
    ids.push(await a.patients.insert({ name: `P${i}`, ward: "A", n: 0 }, { space }));
  const base = await a.exportCommits({}, { spaces: [space.id] });
  const vectorAfterBase = await a.vector([space.id]);
  await a.patients.update(ids[0]!, (p) => void (p.ward = "B"));
  await a.transact(async (tx) => {
    await tx.patients.update(ids[1]!, (p) => void (p.name = "P1 renamed"));
    await tx.patients.insert({ name: "P4", ward: "C", n: 0 }, { space });
    await tx.patients.insert({ name: "P5", ward: "C", n: 0 }, { space });
  });
  await a.patients.delete(ids[2]!);
  await a.patients.update(ids[3]!, (p) => void (p.n = 7));
  await a.patients.insert({ name: "P6", ward: "D", n: 1 }, { space });
  const batch = await a.exportCommits(vectorAfterBase, { spaces: [space.id] });
  return { space: space.id, link, base, batch };
}

async function target(link: string, base: readonly Commit[]): Promise<Db> {
  const b = await open("target");
  cleanups.push(() => b.close());
  await b.join(link);
  const r = await b.applyCommits(base);
  expect(r.applied.length).toBe(base.length);
  return b;
}

describe("storage faults on an incoming batch (applyCommits)", () => {
  for (const kind of ["quota", "io"] as const) {
    it(`a ${kind} failure at EVERY write k of a batch, once and forever: the batch is fully absent, the error typed, and a retry converges`, async () => {
      const { space, link, base, batch } = await incomingFixture();
      expect(batch.length).toBeGreaterThanOrEqual(5);

      // A clean run: how many writes one batch makes, and the state it leads to.
      const clean = await target(link, base);
      const counter = injectWriteFault(clean.name, Infinity, kind);
      const report = await clean.applyCommits(batch);
      restoreWrites();
      expect(report.applied.length).toBe(batch.length);
      const K = counter.writes();
      expect(K).toBeGreaterThan(batch.length);
      const want = await visibleState(clean, space);

      let checked = 0;
      for (const forever of [false, true]) {
        for (let k = 1; k <= K; k++) {
          const what = `${kind} fault at write ${k} of ${K}${forever ? ", forever" : ", once"}`;
          const b = await target(link, base);
          const before = await snapshot(b);
          const vector = await b.vector([space]);
          const fault = injectWriteFault(b.name, k, kind, forever);
          const err = await b.applyCommits(batch).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(fault.failed(), what).toBeGreaterThan(0);
          expect(err, `${what}: applyCommits must reject`).toBeDefined();
          expect(isTyped(err, kind), `${what}: got ${(err as Error)?.name}: ${(err as Error)?.message}`).toBe(
            true,
          );
          if (forever) {
            // Still failing: a second attempt fails the same way and changes nothing either.
            const again = await b.applyCommits(batch).then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(isTyped(again, kind), `${what}: second attempt`).toBe(true);
          }
          restoreWrites();
          expect(await snapshot(b), `${what}: the replica changed`).toBe(before);
          expect(await b.vector([space]), `${what}: the vector moved`).toEqual(vector);
          // Storage works again: the same batch applies and the replica equals the clean one.
          const retry = await b.applyCommits(batch);
          expect(retry.applied.length, what).toBe(batch.length);
          expect(retry.rejected, what).toEqual([]);
          expect(await visibleState(b, space), `${what}: differs from a clean replica`).toBe(want);
          await b.close();
          checked++;
        }
      }
      expect(checked).toBe(2 * K);
    });
  }
});

describe("storage faults on a local commit", () => {
  for (const kind of ["quota", "io"] as const) {
    it(`a ${kind} failure at EVERY write k of a multi-record commit, once and forever: nothing written, no sequence used`, async () => {
      // The commit under test: an insert, an update, a counter and a delete (row put and row delete).
      const commitOn = (db: Db, ids: string[]) =>
        db.transact(async (tx) => {
          await tx.patients.insert({ name: "New", ward: "N", n: 0 });
          await tx.patients.update(ids[0]!, (p) => void (p.name = "Changed"));
          await tx.patients.update(ids[1]!, (p) => void (p.n = 5));
          await tx.patients.delete(ids[2]!);
        });
      const prepare = async () => {
        const db = await open("local");
        cleanups.push(() => db.close());
        const ids: string[] = [];
        for (let i = 0; i < 3; i++)
          ids.push(await db.patients.insert({ name: `Before${i}`, ward: "A", n: 0 }));
        return { db, ids };
      };
      const clean = await prepare();
      const counter = injectWriteFault(clean.db.name, Infinity, kind);
      await commitOn(clean.db, clean.ids);
      restoreWrites();
      const K = counter.writes();
      expect(K).toBeGreaterThanOrEqual(6);
      const wantNames = (await clean.db.patients.orderBy("name").toArray()).map((p) => `${p.name}:${p.n}`);

      for (const forever of [false, true]) {
        for (let k = 1; k <= K; k++) {
          const what = `${kind} fault at write ${k} of ${K}${forever ? ", forever" : ", once"}`;
          const { db, ids } = await prepare();
          const before = await snapshot(db);
          const vector = await db.vector();
          injectWriteFault(db.name, k, kind, forever);
          const err = await commitOn(db, ids).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isTyped(err, kind), `${what}: got ${(err as Error)?.name}: ${(err as Error)?.message}`).toBe(
            true,
          );
          if (forever) {
            const again = await db.patients.insert({ name: "Also refused", ward: "Z", n: 0 }).then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(isTyped(again, kind), `${what}: a later write`).toBe(true);
          }
          restoreWrites();
          expect(await snapshot(db), `${what}: the replica changed`).toBe(before);
          expect(await db.vector(), `${what}: a sequence number was used`).toEqual(vector);
          await commitOn(db, ids);
          expect(
            (await db.patients.orderBy("name").toArray()).map((p) => `${p.name}:${p.n}`),
            what,
          ).toEqual(wantNames);
          expect(
            (await db.patients.history(ids[0]!)).map((h) => h.seq),
            `${what}: sequence after the retry`,
          ).toEqual([1, 4]);
          await db.close();
        }
      }
    });
  }
});

describe("storage faults during real sync", () => {
  it("a receiver that runs out of quota mid-sync reports QuotaExceeded, keeps its data whole, and converges after reconnect()", async () => {
    const relay = inProcessRelay({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000 } });
    cleanups.push(() => relay.close());
    const a = await open("sync-a");
    const b = await open("sync-b");
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const space = await a.createSpace({ name: "Sync" });
    await b.join(await a.invite(space, "https://app.example/"));
    const TOTAL = 120;
    for (let i = 0; i < TOTAL; i++)
      await a.patients.insert({ name: `P${String(i).padStart(3, "0")}`, ward: "A", n: i }, { space });
    const stopA = a.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 5, maxMs: 50 } });
    cleanups.push(stopA);
    await waitFor(a.status, (s) => s.pendingCommits === 0 && s.state === "synced", 20_000, "a uploaded");

    // B starts syncing; after its first applied remote commits, storage fills up for good.
    const errors: string[] = [];
    let fault: ReturnType<typeof injectWriteFault> | null = null;
    const off = b.replica.onCommits((commits, origin) => {
      if (origin === "remote" && commits.length > 0 && !fault)
        fault = injectWriteFault(b.name, 1, "quota", true);
    });
    const statusSub = b.status.subscribe((s) => {
      if (s.lastError && (errors.length === 0 || errors.at(-1) !== `${s.lastError.code}@${s.lastError.at}`)) {
        errors.push(`${s.lastError.code}@${s.lastError.at}`);
      }
    });
    cleanups.push(() => statusSub.unsubscribe());
    // A small pull window would make this faster, but the engine's own sizes are what we test.
    const stopB = b.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 5, maxMs: 50 } });
    cleanups.push(stopB);
    const failed = await waitFor(
      b.status,
      (s) => s.lastError?.code === "QuotaExceeded",
      20_000,
      "b to report QuotaExceeded",
    );
    off();
    expect(failed.lastError!.message.length).toBeGreaterThan(0);
    // Let it retry a few times against the full storage (reconnects with backoff): still whole, still typed.
    const failedWrites = fault!.failed();
    b.reconnect();
    await waitFor(
      b.status,
      () => fault!.failed() > failedWrites + 2,
      20_000,
      "b to retry against full storage",
    );
    const codes = new Set(errors.map((e) => e.split("@")[0]));
    expect([...codes], `every error reported while storage was full: ${errors.join(" ")}`).toEqual([
      "QuotaExceeded",
    ]);

    // Nothing is half-written: every held commit is contiguous per device, its rows exist, and the
    // replica equals a clean replica given exactly the commits it holds. (Checked while storage is still
    // full, so the session's retries cannot change B meanwhile; reads still work.)
    const held = await b.exportCommits({}, { spaces: [space.id] });
    const vector = (await b.vector([space.id]))[space.id] ?? {};
    const heldSeqs = held.map((c) => c.seq).sort((x, y) => x - y);
    expect(heldSeqs).toEqual(Array.from({ length: vector[a.deviceId] ?? 0 }, (_, i) => i + 1));
    expect(heldSeqs.length).toBeLessThan(TOTAL);
    expect(await b.patients.count()).toBe(heldSeqs.length);
    const witness = await open("sync-witness");
    cleanups.push(() => witness.close());
    await witness.join(await a.invite(space, "https://app.example/"));
    await witness.applyCommits(await a.exportCommits({}, { spaces: [space.id], limit: heldSeqs.length }));
    expect(
      (await visibleState(b, space.id)) === (await visibleState(witness, space.id)),
      "b equals a clean replica of what it holds",
    ).toBe(true);

    // Room again: one reconnect and B finishes by itself.
    restoreWrites();
    b.reconnect();
    await waitFor(
      b.patients.live((c) => c.count()),
      (n) => n === TOTAL,
      30_000,
      `b to hold all ${TOTAL}`,
    );
    await waitFor(b.status, (s) => s.state === "synced", 20_000, "b synced");
    expect(await b.vector([space.id])).toEqual(await a.vector([space.id]));
    await witness.applyCommits(
      await a.exportCommits(await witness.vector([space.id]), { spaces: [space.id] }),
    );
    expect(
      (await visibleState(b, space.id)) === (await visibleState(witness, space.id)),
      "b equals a clean replica after sync",
    ).toBe(true);
  });

  it("a receiver whose storage is already full when it connects reports QuotaExceeded (not a generic error), and syncs once there is room", async () => {
    const relay = inProcessRelay({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000 } });
    cleanups.push(() => relay.close());
    const a = await open("full-a");
    const b = await open("full-b");
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const space = await a.createSpace({ name: "Full" });
    await b.join(await a.invite(space, "https://app.example/"));
    for (let i = 0; i < 10; i++) await a.patients.insert({ name: `P${i}`, ward: "A", n: i }, { space });
    const stopA = a.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 5, maxMs: 50 } });
    cleanups.push(stopA);
    await waitFor(a.status, (s) => s.pendingCommits === 0 && s.state === "synced", 20_000, "a uploaded");

    const before = await snapshot(b);
    const fault = injectWriteFault(b.name, 1, "quota", true);
    const stopB = b.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 5, maxMs: 50 } });
    cleanups.push(stopB);
    const seen = await waitFor(
      b.status,
      (s) => s.lastError !== undefined && fault.failed() > 0,
      20_000,
      "b to report a storage error",
    );
    // The first thing B writes when it connects is the relay's acknowledgement vector: that write is
    // refused for lack of room too, and must be reported as the typed QuotaExceeded like any other.
    expect
      .soft(seen.lastError!.code, `lastError: ${seen.lastError!.code}: ${seen.lastError!.message}`)
      .toBe("QuotaExceeded");
    expect(await snapshot(b)).toBe(before);
    restoreWrites();
    b.reconnect();
    await waitFor(
      b.patients.live((c) => c.count()),
      (n) => n === 10,
      20_000,
      "b to hold all 10",
    );
    expect(await b.vector([space.id])).toEqual(await a.vector([space.id]));
  });
});
