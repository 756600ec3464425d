import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fromHex } from "@shoal/client/protocol";
import { createApp } from "../src/app.ts";
import { RelayMetrics } from "../src/metrics.ts";
import { startRelay, type RunningRelay } from "../src/node.ts";
import { makeChain, randomId, testDevice } from "../src/store/commit-fixtures.ts";
import { MemoryStore } from "../src/store/memory-store.ts";
import { SqliteStore } from "../src/store/sqlite-store.ts";
import type { RelayStore } from "../src/store/store.ts";
import { parseExposition, type ExpositionFamily } from "./exposition-text.ts";
import { connectReady, type TestClient } from "./ws-client.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";

const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Every family the relay itself exposes, with its type: the README's /metrics table lists the same. */
const RELAY_FAMILIES: Record<string, ExpositionFamily["type"]> = {
  shoal_build_info: "gauge",
  shoal_connections_open: "gauge",
  shoal_connections_total: "counter",
  shoal_spaces_active: "gauge",
  shoal_commits_in_total: "counter",
  shoal_commit_bytes_in_total: "counter",
  shoal_commits_duplicate_total: "counter",
  shoal_commits_out_total: "counter",
  shoal_commit_bytes_out_total: "counter",
  shoal_frames_rejected_total: "counter",
  shoal_commits_refused_total: "counter",
  shoal_snapshots_stored_total: "counter",
  shoal_compactions_total: "counter",
  shoal_compacted_bytes_total: "counter",
  shoal_snapshots_served_total: "counter",
  shoal_snapshot_bytes_in_total: "counter",
  shoal_snapshot_bytes_out_total: "counter",
  shoal_snapshots_refused_total: "counter",
  shoal_upgrades_refused_total: "counter",
  shoal_access_probes_total: "counter",
  shoal_appeals_total: "counter",
  shoal_refusals_total: "counter",
  shoal_connections_closed_total: "counter",
  shoal_signals_forwarded_total: "counter",
  shoal_signals_dropped_total: "counter",
  shoal_redis_errors_total: "counter",
  shoal_fanout_published_total: "counter",
  shoal_fanout_received_total: "counter",
  shoal_fanout_lag_seconds: "histogram",
  shoal_ack_latency_seconds: "histogram",
  shoal_push_latency_seconds: "histogram",
  shoal_store_batch_commits: "histogram",
  shoal_store_batch_appends_total: "counter",
  shoal_store_up: "gauge",
  shoal_spaces_stored: "gauge",
  shoal_store_commits: "gauge",
  shoal_store_bytes: "gauge",
};
const STORE_FAMILIES = ["shoal_spaces_stored", "shoal_store_commits", "shoal_store_bytes"];

/** A MemoryStore that can be switched "down": every call then rejects, as RedisStore's do in an outage. */
function switchableStore(): { store: RelayStore; setDown(down: boolean): void } {
  const inner = new MemoryStore();
  let down = false;
  const store = new Proxy(inner, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== "function") return value;
      // Bound to the target: MemoryStore's #private fields are not reachable through the proxy.
      if (key === "close") return (value as () => Promise<void>).bind(target);
      return (...args: unknown[]) =>
        down
          ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379"))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return { store, setDown: (d) => (down = d) };
}

function bound(target: object, value: unknown): unknown {
  return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
}

const relays: RunningRelay[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

async function start(store: RelayStore = new MemoryStore()): Promise<RunningRelay> {
  const relay = await startRelay({ store, port: 0, host: "127.0.0.1" });
  relays.push(relay);
  return relay;
}

async function ready(relay: RunningRelay, space: string, token: Uint8Array): Promise<TestClient> {
  const c = await connectReady(relay.url.replace(/^http/, "ws"), space, token, randomId());
  clients.push(c);
  return c;
}

async function page(
  relay: RunningRelay,
): Promise<{ status: number; families: Map<string, ExpositionFamily> }> {
  const res = await fetch(`${relay.url}/metrics`);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return { status: res.status, families: parseExposition(await res.text()) };
}

function value(families: Map<string, ExpositionFamily>, name: string, labels: Record<string, string> = {}) {
  const family = families.get(name) ?? families.get(name.replace(/_(count|sum)$/, ""));
  const sample = family?.samples.find(
    (s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels),
  );
  return sample?.value;
}

/** Uploads a chain of `n` commits of a new device over `conn` and waits for the relay's ack. */
async function uploadAcked(conn: Awaited<ReturnType<typeof ready>>, space: string, n: number): Promise<void> {
  const from = conn.frames.length;
  conn.send({
    type: "commits",
    space: fromHex(space, 16),
    commits: makeChain(space, testDevice(), n),
    more: false,
  });
  await conn.next("ack", from);
}

describe("the exposition check (the parser the page is held to)", () => {
  const ok = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n";
  it("accepts a well-formed page", () => {
    expect(parseExposition(ok).get("a_total")?.samples[0]?.value).toBe(1);
  });

  const bad: [string, string, RegExp][] = [
    [
      "a gauge named like a counter's OpenMetrics family (the old shoal_connections)",
      "# TYPE shoal_connections gauge\nshoal_connections 1\n# TYPE shoal_connections_total counter\nshoal_connections_total 3\n",
      /clashes/,
    ],
    ["a family declared twice", `${ok}# TYPE b gauge\nb 1\n# TYPE a_total counter\n`, /declared twice/],
    ["a sample of an undeclared family", `${ok}c 1\n`, /not part of the family/],
    ["a sample away from its family", `${ok}# TYPE b gauge\nb 1\na_total 2\n`, /not part of the family/],
    ["a counter without _total", "# TYPE a counter\na 1\n", /must end in _total/],
    ["a gauge ending in _total", "# TYPE g_total gauge\ng_total 1\n", /must not end in _total/],
    [
      "a gauge taking a histogram's sample name",
      '# TYPE h histogram\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n# TYPE h_count gauge\nh_count 1\n',
      /clashes/,
    ],
    ["a histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 0\nh_sum 0\nh_count 0\n', /\+Inf/],
    ["a family without TYPE", "# HELP g G.\ng 1\n", /no TYPE/],
    ["a bad label escape", '# TYPE g gauge\ng{a="\\x"} 1\n', /bad escape/],
    ["the same series twice", "# TYPE g gauge\ng 1\ng 2\n", /twice/],
    ["no final newline", "# TYPE g gauge\ng 1", /newline/],
  ];
  for (const [name, text, error] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => parseExposition(text)).toThrow(error);
    });
  }
});

describe("/metrics of a running relay", () => {
  it("is one valid page: process metrics, each relay family once, build info, ack and push latencies", async () => {
    const relay = await start();
    const { space, token } = claimedSpace();
    const writer = await ready(relay, space, token);
    const reader = await ready(relay, space, token);
    await uploadAcked(writer, space, 3);
    await reader.next("commits");
    writer.sendRaw(Uint8Array.of(2, 3, 0x5a)); // truncated: a labelled counter gets a series
    await writer.closed;

    const { status, families } = await page(relay);
    expect(status).toBe(200);
    const relayNames = [...families.keys()].filter((n) => n.startsWith("shoal_"));
    expect(relayNames.sort()).toEqual(Object.keys(RELAY_FAMILIES).sort());
    for (const [name, type] of Object.entries(RELAY_FAMILIES))
      expect(families.get(name)?.type, name).toBe(type);
    for (const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
    ])
      expect(families.has(name), name).toBe(true);
    expect(value(families, "shoal_build_info", { version: VERSION })).toBe(1);
    expect(value(families, "shoal_ack_latency_seconds_count")).toBe(1);
    expect(value(families, "shoal_push_latency_seconds_count")).toBe(1);
    expect(value(families, "shoal_commits_in_total")).toBe(3);
    expect(value(families, "shoal_frames_rejected_total", { reason: "truncated" })).toBe(1);
    expect(value(families, "shoal_store_up")).toBe(1);
    expect(value(families, "shoal_store_commits")).toBe(3);
  });

  it("counts the SQLite store's group transactions and the commits they stored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-metrics-"));
    const metrics = new RelayMetrics();
    const store = new SqliteStore(join(dir, "relay.sqlite"), { onBatch: (b) => metrics.storeBatch(b) });
    const relay = await startRelay({ store, metrics, port: 0, host: "127.0.0.1" });
    relays.push(relay);
    try {
      const { space, token } = claimedSpace();
      const writer = await ready(relay, space, token);
      await uploadAcked(writer, space, 3);
      const { families } = await page(relay);
      expect(value(families, "shoal_store_batch_commits_count")).toBe(1);
      expect(value(families, "shoal_store_batch_commits_sum")).toBe(3);
      expect(value(families, "shoal_store_batch_appends_total")).toBe(1);
    } finally {
      // The relay (and its store) close in afterEach; Linux lets the open files be unlinked first.
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("renders one page per relay when several run in one process", async () => {
    const [a, b] = [await start(), await start()];
    const { space, token } = claimedSpace();
    await ready(a, space, token);
    const [pa, pb] = [await page(a), await page(b)];
    expect(value(pa.families, "shoal_connections_total")).toBe(1);
    expect(value(pb.families, "shoal_connections_total")).toBe(0);
    expect(pb.families.has("process_cpu_seconds_total")).toBe(true);
  });

  it("renders during a store outage: 200, shoal_store_up 0, the store's gauges left out, the rest kept", async () => {
    const { store, setDown } = switchableStore();
    const relay = await start(store);
    const { space, token } = claimedSpace();
    const c = await ready(relay, space, token);
    await uploadAcked(c, space, 2);
    setDown(true);

    const { status, families } = await page(relay);
    expect(status).toBe(200);
    expect(value(families, "shoal_store_up")).toBe(0);
    for (const name of STORE_FAMILIES) expect(families.has(name), name).toBe(false);
    expect(value(families, "shoal_commits_in_total")).toBe(2);
    expect(value(families, "shoal_connections_open")).toBe(1);
    expect(families.has("process_cpu_seconds_total")).toBe(true);
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(503);

    setDown(false);
    expect(value((await page(relay)).families, "shoal_store_up")).toBe(1);
  });

  it("renders without the store's totals when the store does not answer in time", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const hanging = new Proxy(new MemoryStore(), {
      get: (target, key, receiver) =>
        key === "stats" ? () => new Promise(() => {}) : bound(target, Reflect.get(target, key, receiver)),
    });
    const app = createApp({ store: hanging, metrics: new RelayMetrics() });
    const res = app.request("/metrics");
    await vi.advanceTimersByTimeAsync(2000);
    const answered = await res;
    expect(answered.status).toBe(200);
    const families = parseExposition(await answered.text());
    expect(value(families, "shoal_store_up")).toBe(0);
    expect(families.has("shoal_store_commits")).toBe(false);
  });
});
