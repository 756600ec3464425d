import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { RedisFanOut } from "./fan-out.ts";
import { DEFAULT_RELAY_LIMITS, resolveRelayLimits, type RelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { startRelay } from "./node.ts";
import { jsonLinesLog, silentLog } from "./relay-log.ts";
import { SpaceHub } from "./space-hub.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { RedisStore } from "./store/redis-store.ts";
import { SqliteStore } from "./store/sqlite-store.ts";
import type { RelayStore } from "./store/store.ts";

/** A limit flag: its name, the `RelayLimits` key it sets, and its line of help. */
interface LimitFlag {
  flag: string;
  key: keyof RelayLimits;
  help: string;
}

/** Every limit the CLI sets; each also reads the environment variable `SHOAL_<FLAG>` (see `envName`). */
const LIMIT_FLAGS: readonly LimitFlag[] = [
  { flag: "quota-bytes", key: "quotaBytesPerSpace", help: "bytes of commits and snapshot per space" },
  {
    flag: "max-store-bytes",
    key: "maxStoreBytes",
    help: "bytes of commits and snapshots in the whole store",
  },
  { flag: "max-spaces", key: "maxSpaces", help: "spaces the store may hold" },
  {
    flag: "new-spaces-per-hour",
    key: "newSpacesPerHourPerAddress",
    help: "new spaces one address may register per hour",
  },
  { flag: "max-snapshot-bytes", key: "maxSnapshotBytes", help: "largest snapshot accepted" },
  {
    flag: "max-upload-buffer-bytes",
    key: "maxUploadBufferBytes",
    help: "unfinished snapshot uploads held in memory, all connections",
  },
  { flag: "max-frame-bytes", key: "maxFrameBytes", help: "largest accepted frame (65536 to 1048576)" },
  { flag: "rate", key: "messagesPerSecond", help: "frames per second per connection (burst: twice as many)" },
  {
    flag: "connection-bytes-per-second",
    key: "connectionBytesPerSecond",
    help: "bytes per second one connection may send",
  },
  {
    flag: "space-bytes-per-second",
    key: "spaceBytesPerSecond",
    help: "bytes per second a space's connections may send",
  },
  { flag: "max-connections", key: "maxConnections", help: "open TCP connections in total" },
  {
    flag: "max-connections-per-address",
    key: "maxConnectionsPerAddress",
    help: "open TCP connections from one address",
  },
  {
    flag: "max-connections-per-space",
    key: "maxConnectionsPerSpace",
    help: "open sync connections to one space",
  },
  { flag: "idle-timeout-ms", key: "idleTimeoutMs", help: "close connections silent for this long" },
  { flag: "headers-timeout-ms", key: "headersTimeoutMs", help: "time to send a request's headers" },
  { flag: "request-timeout-ms", key: "requestTimeoutMs", help: "time to send a whole request" },
];

/** `--max-frame-bytes` reads `SHOAL_MAX_FRAME_BYTES` when the flag is absent. */
function envName(flag: string): string {
  return `SHOAL_${flag.toUpperCase().replace(/-/g, "_")}`;
}

const USAGE = `Usage: shoal-relay [options]
Every option with a value can also come from the environment variable SHOAL_<OPTION>, e.g.
SHOAL_MAX_CONNECTIONS=1000 for --max-connections 1000; the flag wins.
  --port <n>              port to listen on, 0 for a free one (default 8787)
  --host <addr>           address to bind (default 127.0.0.1)
  --data <dir>            directory of the sqlite store (default ./relay-data)
  --store <kind>          sqlite, memory, or a redis://host:port/db URL to share one store between
                          several instances (default sqlite, or $SHOAL_REDIS_URL when it is set)
  --redis-prefix <p>      prefix of every Redis key and channel (default shoal:)
  --allow-unsafe-redis    start although Redis does not fsync each write (development only)
  --static <dir>          serve a built web app at / (SPA fallback to index.html)
  --origin <origin>       allow only this browser Origin (repeatable; SHOAL_ORIGIN: comma-separated);
                          'self' is the relay's own origin, '*' any. Default: any, or self with --static
${LIMIT_FLAGS.map((l) => `  --${`${l.flag} <n>`.padEnd(34)}${l.help} (default ${DEFAULT_RELAY_LIMITS[l.key]})`).join("\n")}
  --quiet                 no log lines on stderr
Limits are positive integers; 0 is refused.
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
      port: { type: "string" },
      host: { type: "string" },
      data: { type: "string" },
      store: { type: "string" },
      "redis-prefix": { type: "string" },
      "allow-unsafe-redis": { type: "boolean", default: false },
      static: { type: "string" },
      origin: { type: "string", multiple: true },
      ...Object.fromEntries(LIMIT_FLAGS.map((l) => [l.flag, { type: "string" as const }])),
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  const env = process.env;
  const text = (flag: string, fallback?: string): string | undefined =>
    ((values as Record<string, unknown>)[flag] as string | undefined) ?? env[envName(flag)] ?? fallback;
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const metrics = new RelayMetrics();
  const limits: Partial<RelayLimits> = {};
  for (const l of LIMIT_FLAGS) limits[l.key] = positiveInt(text(l.flag), l.flag);
  if (limits.messagesPerSecond !== undefined) limits.messageBurst = limits.messagesPerSecond * 2;
  // Checked before the store opens, so a bad value never leaves a half-started relay.
  resolveRelayLimits(limits);
  const origins =
    values.origin ??
    env.SHOAL_ORIGIN?.split(",")
      .map((o) => o.trim())
      .filter(Boolean);
  const kind = values.store ?? env.SHOAL_STORE ?? env.SHOAL_REDIS_URL ?? "sqlite";
  const backend = isRedisUrl(kind)
    ? await openRedis(kind, text("redis-prefix", "shoal:")!, values["allow-unsafe-redis"], metrics)
    : { store: openStore(kind, text("data", "./relay-data")!), hub: undefined, fanOut: undefined };
  const { store, hub, fanOut } = backend;
  const relay = await startRelay({
    store,
    metrics,
    hub,
    readiness: fanOut ? () => (fanOut.healthy ? undefined : "fan-out-unavailable") : undefined,
    port: optionalInt(text("port", "8787"), "--port"),
    host: text("host", "127.0.0.1"),
    allowedOrigins: origins,
    staticDir: text("static"),
    log: values.quiet ? silentLog : jsonLinesLog,
    limits,
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

/** A limit's value: absent, or a positive integer (0 is refused: no limit means "unlimited" nowhere). */
function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new Error(
      `--${flag} (or ${envName(flag)}) needs a positive integer, not ${JSON.stringify(value)}.`,
    );
  }
  return n;
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
