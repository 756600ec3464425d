import { join, resolve } from "node:path";
import { isRedisUrl, parseRelayCli, USAGE, UsageError } from "./cli-options.ts";
import { RedisFanOut } from "./fan-out.ts";
import { RelayMetrics } from "./metrics.ts";
import { startRelay } from "./node.ts";
import { jsonLinesLog, silentLog } from "./relay-log.ts";
import { relayVersion } from "./relay-version.ts";
import { SpaceHub } from "./space-hub.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { RedisStore } from "./store/redis-store.ts";
import { SqliteStore } from "./store/sqlite-store.ts";
import type { RelayStore } from "./store/store.ts";

/**
 * Command-line entry: reads flags and `SHOAL_*` variables (`parseRelayCli`), opens the store, starts
 * the relay, prints its address as one JSON line on stdout (logs go to stderr), and shuts down
 * gracefully on SIGTERM or SIGINT.
 *
 * @example
 * // node --import tsx sync-server/src/cli.ts --port 0 --store memory
 * // {"event":"listening","url":"http://127.0.0.1:41237","port":41237,"host":"127.0.0.1","store":"memory"}
 */
export async function main(argv: string[]): Promise<void> {
  const command = parseRelayCli(argv, process.env);
  if (command.kind === "help") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  if (command.kind === "version") {
    process.stdout.write(relayVersion() + "\n");
    return;
  }
  const o = command.options;
  const metrics = new RelayMetrics();
  const backend = isRedisUrl(o.store)
    ? await openRedis(o.store, o.redisPrefix, o.allowUnsafeRedis, metrics)
    : { store: openStore(o.store, o.dataDir, metrics), hub: undefined, fanOut: undefined };
  const { store, hub, fanOut } = backend;
  const relay = await startRelay({
    store,
    metrics,
    hub,
    readiness: fanOut ? () => (fanOut.healthy ? undefined : "fan-out-unavailable") : undefined,
    port: o.port,
    host: o.host,
    allowedOrigins: o.origins,
    staticDir: o.staticDir,
    log: o.quiet ? silentLog : jsonLinesLog,
    limits: o.limits,
    verifyThreads: o.verifyThreads,
    ...(o.region !== undefined && { region: o.region }),
  }).catch(async (e: unknown) => {
    // Not listening (port taken, bad address): release the store so the process can exit.
    await store.close().catch(() => {});
    await fanOut?.close().catch(() => {});
    throw e;
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1); // a second signal means "now"
    stopping = true;
    if (!o.quiet) jsonLinesLog("relay.stopping", { signal });
    relay
      .close()
      .then(() => fanOut?.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  // Before the listening line: whoever reads it may signal at once, and a signal that finds no handler
  // kills the process without closing the store.
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.stdout.write(
    JSON.stringify({
      event: "listening",
      url: relay.url,
      port: relay.port,
      host: relay.host,
      // The kind only: a Redis URL may carry a password.
      store: isRedisUrl(o.store) ? (o.store.includes("+cluster://") ? "redis-cluster" : "redis") : o.store,
      ...(o.region !== undefined && { region: o.region }),
    }) + "\n",
  );
}

function openStore(kind: string, dataDir: string, metrics: RelayMetrics): RelayStore {
  if (kind === "memory") return new MemoryStore();
  if (kind === "sqlite")
    return new SqliteStore(join(resolve(dataDir), "relay.sqlite"), { onBatch: (b) => metrics.storeBatch(b) });
  throw new UsageError(`--store must be sqlite, memory or a redis:// URL, not ${kind}.`);
}

/** The store and the fan-out of one instance among several on a shared Redis (docs/SCALING.md). */
async function openRedis(url: string, keyPrefix: string, allowUnsafe: boolean, metrics: RelayMetrics) {
  const onError = (operation: string) => metrics.redisError(operation);
  const store = await RedisStore.open({ url, keyPrefix, allowUnsafe, onError });
  const fanOut = await RedisFanOut.open({
    url,
    keyPrefix,
    onError,
    onPublished: (n) => (metrics.fanOutPublished += n),
    onDelivered: (n, lagMs) => metrics.fanOutDelivered(n, lagMs),
  }).catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  return { store, fanOut, hub: new SpaceHub({ link: fanOut }) };
}

main(process.argv.slice(2)).catch((e: unknown) => {
  // Bad arguments get the usage text; anything else (port taken, store unreachable) one line, so the
  // cause is not lost under forty lines of options in a service log.
  const message = e instanceof Error ? e.message : String(e);
  const line = `shoal-relay: ${message.replace(/\s*\n\s*/g, " ")}\n`;
  if (e instanceof UsageError) {
    process.stderr.write(line + USAGE + "\n");
    process.exit(2);
  }
  process.stderr.write(line);
  process.exit(1);
});
