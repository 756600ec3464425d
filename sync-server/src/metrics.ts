/**
 * Counters behind `/metrics`. Labels are closed sets chosen by the relay (reasons, codes, statuses):
 * never a token, a space id, a device id or anything from a commit, so the output is safe to scrape
 * into a shared monitoring system.
 *
 * @example
 * metrics.frameRejected("truncated");
 * const text = metrics.render({ spaces: 3, commits: 10, bytes: 2048 });
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
  readonly #refusedSnapshots = new Map<string, number>();
  readonly #activeSpaces = new Map<string, number>();
  readonly #rejectedFrames = new Map<string, number>();
  readonly #refusedCommits = new Map<string, number>();
  readonly #refusedUpgrades = new Map<string, number>();
  readonly #accessProbes = new Map<string, number>();
  readonly #closes = new Map<string, number>();
  readonly #redisErrors = new Map<string, number>();
  readonly #refusals = new Map<string, number>();
  /** Signal frames handed to another connection (one per receiving connection). */
  signalsForwarded = 0;
  readonly #droppedSignals = new Map<string, number>();
  /** Commits sent to other relay instances (one count per commit, whatever the number of instances). */
  fanOutPublished = 0;
  /** Commits received from other relay instances. */
  fanOutReceived = 0;
  // Cumulative histogram of publish-to-deliver lag in seconds, Prometheus style: counts per upper bound.
  readonly #lagCounts = FAN_OUT_LAG_BUCKETS.map(() => 0);
  #lagSum = 0;
  #lagCount = 0;

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

  /**
   * A limit against strangers was hit: `reason` is one of `connections`, `connections-per-address`,
   * `request-timeout`, `spaces`, `new-spaces-rate`, `store-full`, `upload-buffer`, `upload-stalled`,
   * `connection-bytes-rate`, `space-bytes-rate` (the last two: reading was paused, nothing refused).
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
    for (const [i, bound] of FAN_OUT_LAG_BUCKETS.entries()) if (seconds <= bound) this.#lagCounts[i]! += 1;
    this.#lagSum += seconds;
    this.#lagCount += 1;
  }

  /** How many fan-out messages arrived so far, and their summed lag in seconds (tests, load test). */
  fanOutLag(): { count: number; sumSeconds: number } {
    return { count: this.#lagCount, sumSeconds: this.#lagSum };
  }

  /** How many frames were rejected for `reason` so far (tests and logs). */
  rejected(reason: string): number {
    return this.#rejectedFrames.get(reason) ?? 0;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(store: { spaces: number; commits: number; bytes: number }): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
    };
    const labelled = (label: string, m: Map<string, number>): [string, number][] =>
      [...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [`{${label}="${escapeLabel(k)}"}`, v]);
    // Not `shoal_connections`: OpenMetrics reads `shoal_connections_total` as the counter family
    // `shoal_connections`, so a gauge of that name would clash with it.
    metric("shoal_connections_open", "gauge", "Open sync connections.", [["", this.connectionsOpen]]);
    metric("shoal_connections_total", "counter", "Sync connections accepted.", [["", this.connectionsTotal]]);
    metric("shoal_spaces_active", "gauge", "Spaces with at least one open connection.", [
      ["", this.#activeSpaces.size],
    ]);
    metric("shoal_spaces_stored", "gauge", "Spaces registered in the store.", [["", store.spaces]]);
    metric("shoal_store_commits", "gauge", "Sealed commits held in the store.", [["", store.commits]]);
    metric("shoal_store_bytes", "gauge", "Bytes of sealed commits and snapshots held in the store.", [
      ["", store.bytes],
    ]);
    metric("shoal_commits_in_total", "counter", "Commits received and newly stored.", [["", this.commitsIn]]);
    metric("shoal_commit_bytes_in_total", "counter", "Bytes of commits received and newly stored.", [
      ["", this.commitBytesIn],
    ]);
    metric("shoal_commits_duplicate_total", "counter", "Exact duplicate commits acknowledged again.", [
      ["", this.duplicates],
    ]);
    metric("shoal_commits_out_total", "counter", "Commits sent (pull replies and live pushes).", [
      ["", this.commitsOut],
    ]);
    metric("shoal_commit_bytes_out_total", "counter", "Bytes of commits sent.", [["", this.commitBytesOut]]);
    metric(
      "shoal_frames_rejected_total",
      "counter",
      "Frames rejected, by reason.",
      labelled("reason", this.#rejectedFrames),
    );
    metric(
      "shoal_commits_refused_total",
      "counter",
      "Commits refused, by error code.",
      labelled("code", this.#refusedCommits),
    );
    metric("shoal_snapshots_stored_total", "counter", "Snapshots newly stored.", [
      ["", this.snapshotsStored],
    ]);
    metric("shoal_snapshots_served_total", "counter", "Stored snapshots sent in answer to snapshot-get.", [
      ["", this.snapshotsServed],
    ]);
    metric("shoal_snapshot_bytes_in_total", "counter", "Bytes of snapshot parts received.", [
      ["", this.snapshotBytesIn],
    ]);
    metric("shoal_snapshot_bytes_out_total", "counter", "Bytes of snapshot parts sent.", [
      ["", this.snapshotBytesOut],
    ]);
    metric(
      "shoal_snapshots_refused_total",
      "counter",
      "Snapshot uploads refused, by error code.",
      labelled("code", this.#refusedSnapshots),
    );
    metric(
      "shoal_upgrades_refused_total",
      "counter",
      "Sync upgrades refused, by HTTP status.",
      labelled("status", this.#refusedUpgrades),
    );
    metric(
      "shoal_access_probes_total",
      "counter",
      "Access probes answered, by HTTP status (204: the token would be accepted).",
      labelled("status", this.#accessProbes),
    );
    metric(
      "shoal_refusals_total",
      "counter",
      "Limits hit by a connection, a request or an upload, by reason (PROTOCOL.md 5, Limits).",
      labelled("reason", this.#refusals),
    );
    metric(
      "shoal_connections_closed_total",
      "counter",
      "Connections closed by the relay, by reason.",
      labelled("reason", this.#closes),
    );
    metric("shoal_signals_forwarded_total", "counter", "Signal frames forwarded to another connection.", [
      ["", this.signalsForwarded],
    ]);
    metric(
      "shoal_signals_dropped_total",
      "counter",
      "Signal frames not forwarded, by reason.",
      labelled("reason", this.#droppedSignals),
    );
    metric(
      "shoal_redis_errors_total",
      "counter",
      "Failed Redis operations, by operation.",
      labelled("operation", this.#redisErrors),
    );
    metric("shoal_fanout_published_total", "counter", "Commits published to other relay instances.", [
      ["", this.fanOutPublished],
    ]);
    metric("shoal_fanout_received_total", "counter", "Commits received from other relay instances.", [
      ["", this.fanOutReceived],
    ]);
    metric(
      "shoal_fanout_lag_seconds",
      "histogram",
      "Time from another instance's publish to delivery here, per message (clocks of both hosts).",
      [
        ...FAN_OUT_LAG_BUCKETS.map((b, i): [string, number] => [`_bucket{le="${b}"}`, this.#lagCounts[i]!]),
        ['_bucket{le="+Inf"}', this.#lagCount],
        ["_sum", this.#lagSum],
        ["_count", this.#lagCount],
      ],
    );
    return out.join("\n") + "\n";
  }
}

/** Upper bounds (seconds) of the fan-out lag histogram: 1 ms to 2.5 s. */
const FAN_OUT_LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
