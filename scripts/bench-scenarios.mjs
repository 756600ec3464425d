// The rows of `npm run bench`: what each scenario measures and which field of a row carries it. Shared
// by the bench (its table) and the charts (their titles and units), which must also read old results.

export const CATCH_UP_COMMITS = 10;

/** @type {{ id: string, label: string, metric: "ms" | "heapMB" | "rssMB" }[]} */
export const SCENARIOS = [
  { id: "insert", label: "local insert (commits of 100)", metric: "ms" },
  { id: "update-p50", label: "single-record update p50", metric: "ms" },
  { id: "update-p99", label: "single-record update p99", metric: "ms" },
  { id: "update-idle-p50", label: "single-record update p50, not syncing", metric: "ms" },
  { id: "update-idle-p99", label: "single-record update p99, not syncing", metric: "ms" },
  { id: "query-warm", label: "indexed query, 10% (warm)", metric: "ms" },
  { id: "query-cold", label: "indexed query, 10% (cold, after reload)", metric: "ms" },
  { id: "live-p50", label: "live query update after commit p50", metric: "ms" },
  { id: "live-p99", label: "live query update after commit p99", metric: "ms" },
  { id: "upload", label: "upload to the server", metric: "ms" },
  { id: "bootstrap", label: "fresh-device bootstrap", metric: "ms" },
  // The main thread during the bootstrap (issue 15 item 2): Shoal only; target: no task over 50 ms.
  { id: "boot-longest-task", label: "longest main-thread task during bootstrap", metric: "ms" },
  { id: "boot-input-delay", label: "longest key-press input delay during bootstrap", metric: "ms" },
  { id: "boot-key-results", label: "longest key press to search results during bootstrap", metric: "ms" },
  { id: "catch-up", label: `catch-up of ${CATCH_UP_COMMITS} commits after offline`, metric: "ms" },
  { id: "heap", label: "page heap after bootstrap (after GC)", metric: "heapMB" },
  { id: "server-rss", label: "server RSS after bootstrap", metric: "rssMB" },
];
