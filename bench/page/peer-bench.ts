// The peer's side of the bench, run in the page: automerge-repo 2.x the way its docs suggest, one
// document per record plus one index document listing every record's URL, IndexedDB storage, and a
// WebSocket to its Node sync server (bench/peer-server.ts). Same data and same steps as Shoal's.
import {
  ImmutableString,
  Repo,
  type AutomergeUrl,
  type DocHandle,
  type DocumentId,
} from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import { resetTraffic, traffic } from "./counting-socket.ts";
import { QUERY_WARD, patients, percentile, tick, type PatientRecord } from "./data.ts";

/** A record as the peer stores it: only `notes` is collaborative text, as in Shoal's declaration. */
type PeerRecord = {
  [K in keyof PatientRecord]: PatientRecord[K] extends string
    ? ImmutableString | string
    : PatientRecord[K] extends string[]
      ? (ImmutableString | string)[]
      : PatientRecord[K];
};
interface IndexDoc {
  urls: (ImmutableString | string)[];
}

const state: {
  repo?: Repo;
  adapter?: WebSocketClientAdapter;
  indexUrl?: AutomergeUrl;
  handles: DocHandle<PeerRecord>[];
} = { handles: [] };

const text = (v: unknown): string =>
  typeof v === "string" ? v : v instanceof ImmutableString ? v.val : String(v);
const S = (s: string) => new ImmutableString(s);

function toPeer(r: PatientRecord): PeerRecord {
  return {
    name: S(r.name),
    ward: S(r.ward),
    clinicId: S(r.clinicId),
    birthDate: S(r.birthDate),
    phone: S(r.phone),
    status: S(r.status),
    allergies: S(r.allergies),
    tags: r.tags.map(S),
    visits: r.visits,
    notes: r.notes,
  };
}

function repo(): Repo {
  if (!state.repo) throw new Error("peer: repo not open");
  return state.repo;
}

const IDB_NAME = "peer-bench";

/** Opens a repo on IndexedDB, with a WebSocket to the peer's sync server if `server` is given. */
export function peerOpen(args: { server?: string; indexUrl?: string }): void {
  state.adapter = args.server ? new WebSocketClientAdapter(args.server) : undefined;
  state.repo = new Repo({
    storage: new IndexedDBStorageAdapter(IDB_NAME),
    network: state.adapter ? [state.adapter] : [],
  });
  if (args.indexUrl) state.indexUrl = args.indexUrl as AutomergeUrl;
  state.handles = [];
}

/** Local insert: n documents in batches of `batch`, each batch appended to the index and flushed to IndexedDB. */
export async function peerInsert(args: {
  n: number;
  seed: number;
  batch: number;
}): Promise<{ ms: number; indexUrl: string }> {
  const t0 = performance.now();
  const index = repo().create<IndexDoc>({ urls: [] });
  state.indexUrl = index.url;
  const handles: DocHandle<PeerRecord>[] = [];
  for (let from = 0; from < args.n; from += args.batch) {
    const batch = patients(args.seed, from, Math.min(args.n, from + args.batch)).map((r) =>
      repo().create<PeerRecord>(toPeer(r)),
    );
    index.change((d) => {
      for (const h of batch) d.urls.push(S(h.url));
    });
    handles.push(...batch);
    await repo().flush([...batch.map((h) => h.documentId), index.documentId]);
  }
  state.handles = handles;
  return { ms: performance.now() - t0, indexUrl: index.url };
}

/** Single-document update latency: change, then flush to IndexedDB (Shoal's update resolves once saved). */
export async function peerUpdates(args: {
  count: number;
  seed: number;
}): Promise<{ p50: number; p99: number; samples: number[] }> {
  const samples: number[] = [];
  for (let k = 0; k < args.count; k++) {
    const h = state.handles[(k * 7919 + args.seed) % state.handles.length]!;
    const t0 = performance.now();
    h.change((d) => {
      d.phone = S(`+44 20 7000 ${String(k).padStart(4, "0")}`);
    });
    await repo().flush([h.documentId]);
    samples.push(performance.now() - t0);
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
}

/** Finds every record of the index, `window` at a time. */
async function loadAll(indexUrl: AutomergeUrl, timeoutMs: number): Promise<DocHandle<PeerRecord>[]> {
  const deadline = performance.now() + timeoutMs;
  const index = await repo().find<IndexDoc>(indexUrl);
  const urls = index.doc().urls.map(text) as AutomergeUrl[];
  const out: DocHandle<PeerRecord>[] = [];
  const window = 500;
  for (let i = 0; i < urls.length; i += window) {
    if (performance.now() > deadline)
      throw new Error(`peer: loaded ${out.length} of ${urls.length} before the timeout`);
    out.push(...(await Promise.all(urls.slice(i, i + window).map((u) => repo().find<PeerRecord>(u)))));
  }
  return out;
}

/** The "query": scan the index document, load each record, keep those with ward = W3. */
export async function peerQuery(args: {
  repeat: number;
  timeoutMs: number;
}): Promise<{ ms: number[]; rows: number }> {
  const ms: number[] = [];
  let rows = 0;
  for (let k = 0; k < args.repeat; k++) {
    const t0 = performance.now();
    const handles = await loadAll(state.indexUrl!, args.timeoutMs);
    const result = handles.map((h) => h.doc()).filter((d) => text(d.ward) === QUERY_WARD);
    ms.push(performance.now() - t0);
    rows = result.length;
    state.handles = handles;
  }
  return { ms, rows };
}

/**
 * The peer has no live queries; the closest an app gets is a `change` listener on each shown
 * document that refreshes the list. Time from `change` to that listener having re-filtered the doc.
 */
export async function peerLive(args: {
  count: number;
}): Promise<{ p50: number; p99: number; samples: number[] }> {
  const shown = state.handles.filter((h) => text(h.doc().ward) === QUERY_WARD);
  const samples: number[] = [];
  for (let k = 0; k < args.count; k++) {
    await tick(20);
    const h = shown[(k * 31) % shown.length]!;
    const marker = `live-${k}`;
    const refreshed = new Promise<void>((resolve) => {
      const listener = ({ doc }: { doc: PeerRecord }) => {
        if (text(doc.status) === marker && text(doc.ward) === QUERY_WARD) {
          h.off("change", listener);
          resolve();
        }
      };
      h.on("change", listener);
    });
    const t0 = performance.now();
    h.change((d) => {
      d.status = S(marker);
    });
    await refreshed;
    samples.push(performance.now() - t0);
    await repo().flush([h.documentId]);
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
}

/** Connects the repo to the sync server (the Node side times until the server holds every document). */
export function peerConnect(args: { server: string }): void {
  resetTraffic();
  if (state.adapter) return; // already connected
  state.adapter = new WebSocketClientAdapter(args.server);
  repo().networkSubsystem.addNetworkAdapter(state.adapter);
}

export function peerDisconnect(): void {
  if (state.adapter) repo().networkSubsystem.removeNetworkAdapter(state.adapter);
  state.adapter = undefined;
}

export function peerTraffic(): { sent: number; received: number } {
  return { ...traffic };
}

/** Fresh device: find the index, then every record, then flush to IndexedDB. */
export async function peerBootstrap(args: {
  timeoutMs: number;
}): Promise<{ ms: number; received: number; sent: number; docs: number }> {
  resetTraffic();
  const t0 = performance.now();
  const handles = await loadAll(state.indexUrl!, args.timeoutMs);
  await repo().flush();
  state.handles = handles;
  return { ms: performance.now() - t0, received: traffic.received, sent: traffic.sent, docs: handles.length };
}

/** The writing device: `count` changes to `count` documents, flushed (the Node side waits for the server to hold them). */
export async function peerOfflineEdits(args: {
  count: number;
}): Promise<{ urls: string[]; markers: string[] }> {
  const urls: string[] = [];
  const markers: string[] = [];
  resetTraffic();
  for (let k = 0; k < args.count; k++) {
    const h = state.handles[(k * 104729 + 17) % state.handles.length]!;
    const marker = `catch-up-${k}-${Date.now()}`;
    h.change((d) => {
      d.status = S(marker);
    });
    urls.push(h.url);
    markers.push(marker);
  }
  await repo().flush(state.handles.length ? urls.map((u) => u.replace("automerge:", "") as DocumentId) : []);
  return { urls, markers };
}

/** The device back from offline: reconnect and time until the edited documents show the edits. */
export async function peerCatchUp(args: {
  server: string;
  urls: string[];
  markers: string[];
  timeoutMs: number;
}): Promise<{ ms: number; received: number; sent: number }> {
  resetTraffic();
  const t0 = performance.now();
  peerConnect({ server: args.server });
  resetTraffic();
  const handles = await Promise.all(args.urls.map((u) => repo().find<PeerRecord>(u as AutomergeUrl)));
  const deadline = performance.now() + args.timeoutMs;
  while (!handles.every((h, k) => text(h.doc().status) === args.markers[k])) {
    if (performance.now() > deadline) throw new Error("peer catch-up timeout");
    await tick(5);
  }
  return { ms: performance.now() - t0, received: traffic.received, sent: traffic.sent };
}

export async function peerClose(): Promise<void> {
  await state.repo?.shutdown();
  state.repo = undefined;
}
