import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { relayVersion } from "./relay-version.ts";

/** What the store reports for `/metrics` (`RelayStore.stats()`). */
export interface StoreTotals {
  spaces: number;
  commits: number;
  bytes: number;
}

/**
 * Counters and histograms behind `/metrics`, rendered by prom-client in the Prometheus text format
 * 0.0.4 together with the Node process metrics. Labels are closed sets chosen by the relay (reasons,
 * codes, statuses, operations): never a token, a space id, a device id or anything from a commit, so
 * the output is safe to scrape into a shared monitoring system.
 *
 * Each instance has its own registry (several relays in one process never clash); the counters live
 * in plain fields read synchronously by the relay and its tests, and are copied into prom-client at
 * each scrape by `collect` callbacks.
 *
 * @example
 * metrics.frameRejected("truncated");
 * const text = await metrics.render({ spaces: 3, commits: 10, bytes: 2048 });
 * const degraded = await metrics.render(undefined); // store down: its gauges are left out
 */
export class RelayMetrics {
  connectionsOpen = 0;
  connectionsTotal = 0;
  commitsIn = 0;
  commitBytesIn = 0;
  commitsOut = 0;
  commitBytesOut = 0;
  duplicates = 0;
  /** Snapshots newly stored (each replacing the space's previous one, if any). */
  snapshotsStored = 0;
  /** `snapshot-get` requests answered with a stored snapshot (not the "none" frame). */
  snapshotsServed = 0;
  /** Bytes of snapshot parts received in `snapshot-put` frames. */
  snapshotBytesIn = 0;
  /** Bytes of snapshot parts sent in `snapshot` frames. */
  snapshotBytesOut = 0;
  /** Compactions carried out (counted `compact` operations stored, PROTOCOL.md 12). */
  compactions = 0;
  /** Bytes compactions freed (commits and snapshots). */
  compactedBytes = 0;
  /** Signal frames handed to another connection (one per receiving connection). */
  signalsForwarded = 0;
  /** Commits sent to other relay instances (one count per commit, whatever the number of instances). */
  fanOutPublished = 0;
  /** Commits received from other relay instances. */
  fanOutReceived = 0;
  readonly #refusedSnapshots = new Map<string, number>();
  readonly #activeSpaces = new Map<string, number>();
  readonly #rejectedFrames = new Map<string, number>();
  readonly #refusedCommits = new Map<string, number>();
  readonly #refusedUpgrades = new Map<string, number>();
  readonly #accessProbes = new Map<string, number>();
  readonly #appeals = new Map<string, number>();
  readonly #closes = new Map<string, number>();
  readonly #redisErrors = new Map<string, number>();
  readonly #refusals = new Map<string, number>();
  readonly #droppedSignals = new Map<string, number>();
  #lagSum = 0;
  #lagCount = 0;
  readonly #registry = new Registry();
  readonly #fanOutLag: Histogram;
  readonly #ackLatency: Histogram;
  readonly #pushLatency: Histogram;
  readonly #storeBatch: Histogram;
  #storeBatchAppends = 0;

  constructor(options: { version?: string } = {}) {
    const registers = [this.#registry];
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    const labelled = (name: string, help: string, label: string, counts: Map<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          // Sorted, so two scrapes list the same series in the same order.
          for (const [key, n] of [...counts].sort(([a], [b]) => a.localeCompare(b)))
            this.inc({ [label]: key }, n);
        },
      });

    new Gauge({
      name: "shoal_build_info",
      help: "Always 1; the relay's version.",
      labelNames: ["version"],
      registers,
    }).set({ version: options.version ?? relayVersion() }, 1);
    // Not `shoal_connections`: OpenMetrics reads `shoal_connections_total` as the counter family
    // `shoal_connections`, so a gauge of that name would clash with it.
    gauge("shoal_connections_open", "Open sync connections.", () => this.connectionsOpen);
    counter("shoal_connections_total", "Sync connections accepted.", () => this.connectionsTotal);
    gauge("shoal_spaces_active", "Spaces with at least one open connection.", () => this.#activeSpaces.size);
    counter("shoal_commits_in_total", "Commits received and newly stored.", () => this.commitsIn);
    counter(
      "shoal_commit_bytes_in_total",
      "Bytes of commits received and newly stored.",
      () => this.commitBytesIn,
    );
    counter(
      "shoal_commits_duplicate_total",
      "Exact duplicate commits acknowledged again.",
      () => this.duplicates,
    );
    counter("shoal_commits_out_total", "Commits sent (pull replies and live pushes).", () => this.commitsOut);
    counter("shoal_commit_bytes_out_total", "Bytes of commits sent.", () => this.commitBytesOut);
    labelled("shoal_frames_rejected_total", "Frames rejected, by reason.", "reason", this.#rejectedFrames);
    labelled("shoal_commits_refused_total", "Commits refused, by error code.", "code", this.#refusedCommits);
    counter("shoal_snapshots_stored_total", "Snapshots newly stored.", () => this.snapshotsStored);
    counter("shoal_compactions_total", "Compactions carried out.", () => this.compactions);
    counter("shoal_compacted_bytes_total", "Bytes freed by compactions.", () => this.compactedBytes);
    counter(
      "shoal_snapshots_served_total",
      "Stored snapshots sent in answer to snapshot-get.",
      () => this.snapshotsServed,
    );
    counter("shoal_snapshot_bytes_in_total", "Bytes of snapshot parts received.", () => this.snapshotBytesIn);
    counter("shoal_snapshot_bytes_out_total", "Bytes of snapshot parts sent.", () => this.snapshotBytesOut);
    labelled(
      "shoal_snapshots_refused_total",
      "Snapshot uploads refused, by error code.",
      "code",
      this.#refusedSnapshots,
    );
    labelled(
      "shoal_upgrades_refused_total",
      "Sync upgrades refused, by HTTP status.",
      "status",
      this.#refusedUpgrades,
    );
    labelled(
      "shoal_access_probes_total",
      "Access probes answered, by HTTP status (204: the token would be accepted).",
      "status",
      this.#accessProbes,
    );
    labelled(
      "shoal_appeals_total",
      "Appeals of removed devices answered, by HTTP status (200: the device is let in).",
      "status",
      this.#appeals,
    );
    labelled(
      "shoal_refusals_total",
      "Limits hit by a connection, a request or an upload, by reason (PROTOCOL.md 5, Limits).",
      "reason",
      this.#refusals,
    );
    labelled(
      "shoal_connections_closed_total",
      "Connections closed by the relay, by reason.",
      "reason",
      this.#closes,
    );
    counter(
      "shoal_signals_forwarded_total",
      "Signal frames forwarded to another connection.",
      () => this.signalsForwarded,
    );
    labelled(
      "shoal_signals_dropped_total",
      "Signal frames not forwarded, by reason.",
      "reason",
      this.#droppedSignals,
    );
    labelled(
      "shoal_redis_errors_total",
      "Failed Redis operations, by operation.",
      "operation",
      this.#redisErrors,
    );
    counter(
      "shoal_fanout_published_total",
      "Commits published to other relay instances.",
      () => this.fanOutPublished,
    );
    counter(
      "shoal_fanout_received_total",
      "Commits received from other relay instances.",
      () => this.fanOutReceived,
    );
    this.#fanOutLag = new Histogram({
      name: "shoal_fanout_lag_seconds",
      help: "Time from another instance's publish to delivery here, per message (clocks of both hosts).",
      buckets: [...FAN_OUT_LAG_BUCKETS],
      registers,
    });
    this.#ackLatency = new Histogram({
      name: "shoal_ack_latency_seconds",
      help: "Time from a commits frame's arrival to its ack being sent (queueing and the store's write).",
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.#pushLatency = new Histogram({
      name: "shoal_push_latency_seconds",
      help: "Time from commits being stored to their live push to this instance's other connections of the space.",
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    // Group commit of the SQLite store: _count is the number of durable write transactions (fsyncs of
    // appends), _sum the commits they stored; their ratio is how well concurrent appends are batched.
    this.#storeBatch = new Histogram({
      name: "shoal_store_batch_commits",
      help: "Commits newly stored per durable write transaction of appends (SQLite group commit).",
      buckets: [...BATCH_BUCKETS],
      registers,
    });
    counter(
      "shoal_store_batch_appends_total",
      "Appends (commits frames and appeals) that went through the SQLite store's group transactions.",
      () => this.#storeBatchAppends,
    );
  }

  /** The SQLite store committed one group transaction of `appends` appends storing `commits` commits. */
  storeBatch(batch: { appends: number; commits: number }): void {
    this.#storeBatchAppends += batch.appends;
    this.#storeBatch.observe(batch.commits);
  }

  connectionOpened(space: string): void {
    this.connectionsOpen += 1;
    this.connectionsTotal += 1;
    this.#activeSpaces.set(space, (this.#activeSpaces.get(space) ?? 0) + 1);
  }

  connectionClosed(space: string): void {
    this.connectionsOpen -= 1;
    const n = (this.#activeSpaces.get(space) ?? 1) - 1;
    if (n <= 0) this.#activeSpaces.delete(space);
    else this.#activeSpaces.set(space, n);
  }

  /** A frame was refused; `reason` is a `ProtocolError` reason or a relay reason like `rate-limited`. */
  frameRejected(reason: string): void {
    bump(this.#rejectedFrames, reason);
  }

  /** A compaction was carried out and freed `freed.bytes`. */
  compacted(freed: { bytes: number }): void {
    this.compactions += 1;
    this.compactedBytes += freed.bytes;
  }

  commitRefused(code: string): void {
    bump(this.#refusedCommits, code);
  }

  /** A snapshot upload was refused; `code` is the error code sent (`stale-snapshot`, `gap`, ...). */
  snapshotRefused(code: string): void {
    bump(this.#refusedSnapshots, code);
  }

  /** How many snapshot uploads were refused with `code` so far (tests and logs). */
  snapshotsRefused(code: string): number {
    return this.#refusedSnapshots.get(code) ?? 0;
  }

  upgradeRefused(status: number): void {
    bump(this.#refusedUpgrades, String(status));
  }

  /** An access probe (`POST /sync/<space>/access`) was answered with `status`, 204 included. */
  accessProbed(status: number): void {
    bump(this.#accessProbes, String(status));
  }

  /** An appeal (`POST /sync/<space>/appeal`) was answered with `status`, 200 included. */
  appealed(status: number): void {
    bump(this.#appeals, String(status));
  }

  /**
   * A limit against strangers was hit: `reason` is one of `connections`, `connections-per-address`,
   * `request-timeout`, `spaces`, `new-spaces-rate`, `store-full`, `upload-buffer`, `upload-stalled`,
   * `connection-bytes-rate`, `space-bytes-rate`, `connection-commits-rate` (those three: reading was
   * paused, nothing refused), `claim-missing`, `claim-wrong-space`, `claim-bad-signature` (an unknown
   * space offered without a valid claim by its creator, PROTOCOL.md 1), and the membership faults of a
   * space with members (`device-auth`, `removed`, `not-member`, `invitation-unknown`, `invitation-used`,
   * `invitation-expired`, `invitation-revoked`: `MEMBERSHIP_REFUSALS`).
   */
  refused(reason: string): void {
    bump(this.#refusals, reason);
  }

  /** How many times the limit `reason` was hit so far (tests and logs). */
  refusals(reason: string): number {
    return this.#refusals.get(reason) ?? 0;
  }

  /** The relay closed a connection for `reason` (idle, slow-reader, protocol, ...). */
  closedBy(reason: string): void {
    bump(this.#closes, reason);
  }

  /** A signal frame was not forwarded (or not to one receiver): `rate-limited`, `no-peer`, `slow-reader`. */
  signalDropped(reason: string): void {
    bump(this.#droppedSignals, reason);
  }

  /** How many signals were dropped for `reason` so far (tests and logs). */
  signalsDropped(reason: string): number {
    return this.#droppedSignals.get(reason) ?? 0;
  }

  /** A Redis operation failed; `operation` is one of a fixed set (`append`, `read`, `publish`, ...). */
  redisError(operation: string): void {
    bump(this.#redisErrors, operation);
  }

  /** Commits published by another instance reached this one `lagMs` after they were published. */
  fanOutDelivered(commits: number, lagMs: number): void {
    this.fanOutReceived += commits;
    const seconds = Math.max(0, lagMs) / 1000;
    this.#fanOutLag.observe(seconds);
    this.#lagSum += seconds;
    this.#lagCount += 1;
  }

  /** How many fan-out messages arrived so far, and their summed lag in seconds (tests, load test). */
  fanOutLag(): { count: number; sumSeconds: number } {
    return { count: this.#lagCount, sumSeconds: this.#lagSum };
  }

  /** An ack went out `ms` milliseconds after its commits frame arrived. */
  acked(ms: number): void {
    this.#ackLatency.observe(Math.max(0, ms) / 1000);
  }

  /** Commits stored `ms` milliseconds ago were just pushed to the other connections of their space. */
  pushed(ms: number): void {
    this.#pushLatency.observe(Math.max(0, ms) / 1000);
  }

  /** How many frames were rejected for `reason` so far (tests and logs). */
  rejected(reason: string): number {
    return this.#rejectedFrames.get(reason) ?? 0;
  }

  /** The `Content-Type` of `render`'s output (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /**
   * The `/metrics` page: the process metrics, this relay's families, and the store's totals. Pass
   * `undefined` when the store did not answer (a Redis outage): `shoal_store_up` is then 0 and the
   * gauges that need the store are left out, so the page still renders and those series go stale in
   * Prometheus instead of showing made-up zeros.
   */
  async render(store: StoreTotals | undefined): Promise<string> {
    const text = await Registry.merge([processRegistry(), this.#registry, storeRegistry(store)]).metrics();
    // prom-client 15 writes NaN as `Nan` (lib/util.js, getValueAsString); both text formats spell it
    // `NaN`, and strict OpenMetrics parsers refuse the other spelling. The event-loop delay gauges are
    // NaN until the monitor has its first sample.
    return text.replace(/^([^#].*) Nan$/gm, "$1 NaN");
  }
}

/** Upper bounds (seconds) of the fan-out lag histogram: 1 ms to 2.5 s. */
const FAN_OUT_LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** Upper bounds of the commits-per-transaction histogram: 1 (no batching) to a large burst. */
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] as const;

/** Upper bounds (seconds) of the ack and push latency histograms: 0.5 ms (memory store) to 5 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

let processMetrics: Registry | undefined;

/**
 * Node's process metrics (`process_*`, `nodejs_*`), collected once per process into a registry of
 * their own (never prom-client's global one) and merged into every relay's page: they describe the
 * process, and each collection starts an event-loop delay monitor and a GC observer that cannot be
 * stopped, which a test process starting dozens of relays should not pile up. Created on the first
 * scrape, so relays that are never scraped (unit tests) start none.
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
    // prom-client adds gauges `nodejs_active_handles_total` (and `_requests_`, `_resources_`) beside the
    // labelled gauges `nodejs_active_handles`...: `_total` belongs to counters (promlint), and a reader
    // taking `X_total` for the counter family `X` sees two families. Each is the sum of its labelled
    // twin, so nothing is lost.
    for (const m of processMetrics.getMetricsAsArray())
      if (m.name.endsWith("_total") && !(m instanceof Counter)) processMetrics.removeSingleMetric(m.name);
  }
  return processMetrics;
}

/** The store's gauges for one scrape, in a registry of their own so that a failed query leaves them out. */
function storeRegistry(totals: StoreTotals | undefined): Registry {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: "shoal_store_up",
    help: "1 when the store answered this scrape, 0 when not (shoal_spaces_stored and shoal_store_* are then absent).",
    registers,
  }).set(totals ? 1 : 0);
  if (!totals) return registry;
  new Gauge({ name: "shoal_spaces_stored", help: "Spaces registered in the store.", registers }).set(
    totals.spaces,
  );
  new Gauge({ name: "shoal_store_commits", help: "Sealed commits held in the store.", registers }).set(
    totals.commits,
  );
  new Gauge({
    name: "shoal_store_bytes",
    help: "Bytes of sealed commits and snapshots held in the store.",
    registers,
  }).set(totals.bytes);
  return registry;
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}
