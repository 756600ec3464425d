// The raw limits, run in the page: Dexie on IndexedDB with strict durability (what Shoal promises),
// and a bare WebSocket to a trivial sink/source server in Node (scripts/bench.mjs).
import { Dexie, liveQuery, type Table } from "dexie";
import { PATIENT_INDEXES, QUERY_WARD, patients, percentile, tick, type PatientRecord } from "./data.ts";

type Row = PatientRecord & { id: string };
const DB_NAME = "raw-bench";
const state: { dexie?: Dexie; ids: string[] } = { ids: [] };

function table(): Table<Row, string> {
  if (!state.dexie) throw new Error("raw: database not open");
  return state.dexie.table("patients");
}

export async function rawOpen(): Promise<void> {
  const dexie = new Dexie(DB_NAME, { chromeTransactionDurability: "strict" });
  dexie.version(1).stores({ patients: PATIENT_INDEXES });
  await dexie.open();
  state.dexie = dexie;
}

/** Dexie `bulkPut` of the n rows in ONE strict readwrite transaction. */
export async function rawBulkPut(args: { n: number; seed: number }): Promise<{ ms: number }> {
  const rows: Row[] = patients(args.seed, 0, args.n).map((r, i) => ({
    id: `r-${String(i).padStart(7, "0")}`,
    ...r,
  }));
  state.ids = rows.map((r) => r.id);
  const t0 = performance.now();
  await table().bulkPut(rows);
  return { ms: performance.now() - t0 };
}

export async function rawQuery(args: { repeat: number }): Promise<{ ms: number[]; rows: number }> {
  const ms: number[] = [];
  let rows = 0;
  for (let k = 0; k < args.repeat; k++) {
    const t0 = performance.now();
    rows = (await table().where("ward").equals(QUERY_WARD).toArray()).length;
    ms.push(performance.now() - t0);
  }
  return { ms, rows };
}

/** A single-row `update` in its own strict transaction (the floor for Shoal's one-record update). */
export async function rawUpdates(args: {
  count: number;
  seed: number;
}): Promise<{ p50: number; p99: number; samples: number[] }> {
  if (state.ids.length === 0) state.ids = (await table().toCollection().primaryKeys()) as string[];
  const samples: number[] = [];
  for (let k = 0; k < args.count; k++) {
    const id = state.ids[(k * 7919 + args.seed) % state.ids.length]!;
    const t0 = performance.now();
    await table().update(id, { phone: `+44 20 7000 ${String(k).padStart(4, "0")}` });
    samples.push(performance.now() - t0);
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
}

/** Dexie's own `liveQuery` on the same query: update call to the next emission. */
export async function rawLive(args: {
  count: number;
}): Promise<{ p50: number; p99: number; samples: number[] }> {
  const targets = (await table().where("ward").equals(QUERY_WARD).primaryKeys()) as string[];
  let waiter: (() => void) | null = null;
  let first: (() => void) | null = null;
  const firstEmission = new Promise<void>((r) => (first = r));
  const sub = liveQuery(() => table().where("ward").equals(QUERY_WARD).toArray()).subscribe(() => {
    first?.();
    first = null;
    const w = waiter;
    waiter = null;
    w?.();
  });
  await firstEmission;
  const samples: number[] = [];
  try {
    for (let k = 0; k < args.count; k++) {
      await tick(20);
      const emitted = new Promise<void>((r) => (waiter = r));
      const t0 = performance.now();
      const saved = table().update(targets[(k * 31) % targets.length]!, { status: `live-${k}` });
      await emitted;
      samples.push(performance.now() - t0);
      await saved;
    }
  } finally {
    sub.unsubscribe();
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`raw: cannot open ${url}`));
  });
}

const FRAME = 64 * 1024;

/** Sends `bytes` to the sink in 64 KiB frames; done when the sink says it has them all. */
export async function rawWsUpload(args: { url: string; bytes: number }): Promise<{ ms: number }> {
  const ws = await openSocket(`${args.url}/up?bytes=${args.bytes}`);
  const chunk = new Uint8Array(FRAME).fill(7);
  const done = new Promise<void>((r) => (ws.onmessage = () => r()));
  const t0 = performance.now();
  for (let left = args.bytes; left > 0; left -= FRAME) {
    ws.send(left >= FRAME ? chunk : chunk.subarray(0, left));
    // Respect backpressure the way a real sender must.
    while (ws.bufferedAmount > 8 * FRAME) await tick(0);
  }
  await done;
  const ms = performance.now() - t0;
  ws.close();
  return { ms };
}

/** Asks the source for `bytes` and times until they all arrived. */
export async function rawWsDownload(args: { url: string; bytes: number }): Promise<{ ms: number }> {
  const ws = await openSocket(`${args.url}/down`);
  let got = 0;
  const done = new Promise<void>((r) => {
    ws.onmessage = (e) => {
      got += (e.data as ArrayBuffer).byteLength;
      if (got >= args.bytes) r();
    };
  });
  const t0 = performance.now();
  ws.send(String(args.bytes));
  await done;
  const ms = performance.now() - t0;
  ws.close();
  return { ms };
}

export async function rawClose(): Promise<void> {
  state.dexie?.close();
  state.dexie = undefined;
}
