import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { RedisFanOut } from "./fan-out.ts";
import { DEFAULT_RELAY_LIMITS } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { startRelay } from "./node.ts";
import { jsonLinesLog, silentLog } from "./relay-log.ts";
import { SpaceHub } from "./space-hub.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { RedisStore } from "./store/redis-store.ts";
import { SqliteStore } from "./store/sqlite-store.ts";
import type { RelayStore } from "./store/store.ts";

const USAGE = `Usage: shoal-relay [options]
  --port <n>              port to listen on, 0 for a free one (default 8787)
  --host <addr>           address to bind (default 127.0.0.1)
  --data <dir>            directory of the sqlite store (default ./relay-data)
  --store <kind>          sqlite, memory, or a redis://host:port/db URL to share one store between
                          several instances (default sqlite, or $SHOAL_REDIS_URL when it is set)
  --redis-prefix <p>      prefix of every Redis key and channel (default shoal:)
  --allow-unsafe-redis    start although Redis does not fsync each write (development only)
  --static <dir>          serve a built web app at / (SPA fallback to index.html)
  --origin <origin>       allow only this browser Origin (repeatable; default: any)
  --quota-bytes <n>       bytes of commits and snapshot per space (default ${DEFAULT_RELAY_LIMITS.quotaBytesPerSpace})
  --max-snapshot-bytes <n>  largest snapshot accepted (default ${DEFAULT_RELAY_LIMITS.maxSnapshotBytes})
  --max-frame-bytes <n>   largest accepted frame (default ${DEFAULT_RELAY_LIMITS.maxFrameBytes})
  --rate <n>              frames per second per connection (default ${DEFAULT_RELAY_LIMITS.messagesPerSecond})
  --idle-timeout-ms <n>   close connections silent for this long (default ${DEFAULT_RELAY_LIMITS.idleTimeoutMs})
  --quiet                 no log lines on stderr
Prints one JSON line on stdout once listening: {"event":"listening","url":"http://127.0.0.1:8787",...}`;

/**
 * Command-line entry: parses flags, opens the store, starts the relay, prints its address as one JSON
 * line on stdout (logs go to stderr), and shuts down gracefully on SIGTERM or SIGINT.
 *
 * @example
 * // node --import tsx sync-server/src/cli.ts --port 0 --store memory
 * // {"event":"listening","url":"http://127.0.0.1:41237","port":41237,"host":"127.0.0.1","store":"memory"}
 */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8787" },
      host: { type: "string", default: "127.0.0.1" },
      data: { type: "string", default: "./relay-data" },
      store: { type: "string" },
      "redis-prefix": { type: "string", default: "shoal:" },
      "allow-unsafe-redis": { type: "boolean", default: false },
      static: { type: "string" },
      origin: { type: "string", multiple: true },
      "quota-bytes": { type: "string" },
      "max-frame-bytes": { type: "string" },
      "max-snapshot-bytes": { type: "string" },
      rate: { type: "string" },
      "idle-timeout-ms": { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const metrics = new RelayMetrics();
  const kind = values.store ?? process.env.SHOAL_REDIS_URL ?? "sqlite";
  const backend = isRedisUrl(kind)
    ? await openRedis(kind, values["redis-prefix"], values["allow-unsafe-redis"], metrics)
    : { store: openStore(kind, values.data), hub: undefined, fanOut: undefined };
  const { store, hub, fanOut } = backend;
  const rate = optionalInt(values.rate, "--rate");
  const relay = await startRelay({
    store,
    metrics,
    hub,
    readiness: fanOut ? () => (fanOut.healthy ? undefined : "fan-out-unavailable") : undefined,
    port: optionalInt(values.port, "--port"),
    host: values.host,
    allowedOrigins: values.origin,
    staticDir: values.static,
    log: values.quiet ? silentLog : jsonLinesLog,
    limits: {
      quotaBytesPerSpace: optionalInt(values["quota-bytes"], "--quota-bytes"),
      maxFrameBytes: optionalInt(values["max-frame-bytes"], "--max-frame-bytes"),
      maxSnapshotBytes: optionalInt(values["max-snapshot-bytes"], "--max-snapshot-bytes"),
      messagesPerSecond: rate,
      messageBurst: rate === undefined ? undefined : rate * 2,
      idleTimeoutMs: optionalInt(values["idle-timeout-ms"], "--idle-timeout-ms"),
    },
  });
  process.stdout.write(
    JSON.stringify({
      event: "listening",
      url: relay.url,
      port: relay.port,
      host: relay.host,
      // The kind only: a Redis URL may carry a password.
      store: isRedisUrl(kind) ? "redis" : kind,
    }) + "\n",
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1); // a second signal means "now"
    stopping = true;
    if (!values.quiet) jsonLinesLog("relay.stopping", { signal });
    relay
      .close()
      .then(() => fanOut?.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function openStore(kind: string, dataDir: string): RelayStore {
  if (kind === "memory") return new MemoryStore();
  if (kind === "sqlite") return new SqliteStore(join(resolve(dataDir), "relay.sqlite"));
  throw new Error(`--store must be sqlite, memory or a redis:// URL, not ${kind}.`);
}

function isRedisUrl(kind: string): boolean {
  return kind.startsWith("redis://") || kind.startsWith("rediss://");
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

function optionalInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, not ${value}.`);
  return n;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`shoal-relay: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
  process.exit(2);
});
