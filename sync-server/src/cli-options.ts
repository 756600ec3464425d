import { parseArgs } from "node:util";
import { isRegionName } from "@shoal/client/protocol";
import { DEFAULT_RELAY_LIMITS, resolveRelayLimits, type RelayLimits } from "./limits.ts";
import { isRedisStoreUrl, parseRedisTarget } from "./store/redis-target.ts";

/** A limit flag: its name, the `RelayLimits` key it sets, and its line of help. */
interface LimitFlag {
  flag: string;
  key: keyof RelayLimits;
  help: string;
}

/** Every limit the CLI sets; each also reads the environment variable `SHOAL_<FLAG>` (see `envName`). */
export const LIMIT_FLAGS: readonly LimitFlag[] = [
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
  {
    flag: "connection-commits-per-second",
    key: "connectionCommitsPerSecond",
    help: "commits per second one connection may upload (each is a signature to verify)",
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

/**
 * The environment variable of a flag: `--max-frame-bytes` reads `SHOAL_MAX_FRAME_BYTES` when the flag
 * is absent.
 *
 * @example
 * envName("redis-prefix"); // "SHOAL_REDIS_PREFIX"
 */
export function envName(flag: string): string {
  return `SHOAL_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** What the relay CLI prints for `--help`, and after the message of a bad argument. */
export const USAGE = `Usage: shoal-relay [options]
Every option can also come from the environment variable SHOAL_<OPTION>, e.g. SHOAL_MAX_CONNECTIONS=1000
for --max-connections 1000 or SHOAL_QUIET=1 for --quiet (on/off options: 1, true, yes, on or 0, false,
no, off); the flag wins. PORT is read when neither --port nor SHOAL_PORT is given.
  -h, --help              print this text and exit
  --version               print the relay's version and exit
  --port <n>              port to listen on, 0 for a free one (default 8787)
  --host <addr>           address to bind (default 127.0.0.1)
  --data <dir>            directory of the sqlite store (default ./relay-data)
  --store <kind>          sqlite, memory, or a redis://host:port/db URL to share one store between
                          several instances, or redis+cluster://host:port,host:port for a Redis
                          Cluster (default sqlite, or $SHOAL_REDIS_URL when it is set)
  --redis-prefix <p>      prefix of every Redis key and channel (default shoal:)
  --allow-unsafe-redis    start although Redis does not fsync each write (development only)
  --static <dir>          serve a built web app at / (SPA fallback to index.html)
  --origin <origin>       allow only this browser Origin (repeatable; SHOAL_ORIGIN: comma-separated);
                          'self' is the relay's own origin, '*' any. Default: any, or self with --static
${LIMIT_FLAGS.map((l) => `  --${`${l.flag} <n>`.padEnd(34)}${l.help} (default ${DEFAULT_RELAY_LIMITS[l.key]})`).join("\n")}
  --region <name>         the region this relay is in (e.g. eu): it stores the spaces pinned to that
                          region and refuses those pinned to another (default: none, which stores
                          no pinned space)
  --verify-threads <n>    worker threads that verify uploaded commits' signatures, 0 for none: the
                          relay's own thread does it (default 0)
  --quiet                 no log lines on stderr
Limits are positive integers; 0 is refused.
Prints one JSON line on stdout once listening: {"event":"listening","url":"http://127.0.0.1:8787",...}
Logs go to stderr, one JSON object per line: {"time":"<ISO 8601>","event":"<name>",...fields}.
Exit status: 0 after SIGTERM or SIGINT, 1 when the relay cannot start or run, 2 for bad arguments.`;

/** A bad flag, flag value or environment variable: the CLI prints the message and the usage, exit 2. */
export class UsageError extends Error {
  readonly code = "usage";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** How the relay should run, from flags and environment. */
export interface RelayCliOptions {
  port: number;
  host: string;
  /** `sqlite`, `memory`, or a `redis://` / `rediss://` / `redis+cluster://` / `rediss+cluster://` URL. */
  store: string;
  dataDir: string;
  redisPrefix: string;
  allowUnsafeRedis: boolean;
  staticDir: string | undefined;
  origins: string[] | undefined;
  limits: Partial<RelayLimits>;
  /** Worker threads verifying uploads' signatures (`VerifyPool`); 0: the relay's thread does it. */
  verifyThreads: number;
  /** The region the relay declares (`--region`), or undefined. */
  region: string | undefined;
  quiet: boolean;
}

/** What the command line asks for. */
export type RelayCliCommand =
  { kind: "help" } | { kind: "version" } | { kind: "run"; options: RelayCliOptions };

/**
 * Reads the relay's command line and environment. Throws `UsageError` for anything unknown or
 * malformed, before anything is opened, so a bad value never leaves a half-started relay.
 *
 * @example
 * parseRelayCli(["--port", "0", "--store", "memory"], process.env); // { kind: "run", options: {...} }
 * parseRelayCli(["-h"], {}); // { kind: "help" }
 */
export function parseRelayCli(argv: string[], env: Record<string, string | undefined>): RelayCliCommand {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
        port: { type: "string" },
        host: { type: "string" },
        data: { type: "string" },
        store: { type: "string" },
        "redis-prefix": { type: "string" },
        "allow-unsafe-redis": { type: "boolean" },
        static: { type: "string" },
        origin: { type: "string", multiple: true },
        ...Object.fromEntries(LIMIT_FLAGS.map((l) => [l.flag, { type: "string" as const }])),
        "verify-threads": { type: "string" },
        region: { type: "string" },
        quiet: { type: "boolean" },
      },
    }));
  } catch (e) {
    // node:util's parse errors (unknown option, missing value, stray argument) carry ERR_PARSE_ARGS_*.
    if ((e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))
      throw new UsageError((e as Error).message);
    throw e;
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };

  // An empty variable counts as unset, as `SHOAL_PORT=` in a compose file or a unit usually means.
  const fromEnv = (name: string): string | undefined => (env[name] === "" ? undefined : env[name]);
  const text = (flag: string): string | undefined =>
    (values[flag] as string | undefined) ?? fromEnv(envName(flag));
  const onOff = (flag: string): boolean => {
    if (values[flag] === true) return true;
    const raw = fromEnv(envName(flag));
    if (raw === undefined) return false;
    const v = raw.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(v)) return true;
    if (["0", "false", "no", "off"].includes(v)) return false;
    throw new UsageError(
      `${envName(flag)} must be 1, true, yes, on, 0, false, no or off, not ${JSON.stringify(raw)}.`,
    );
  };

  const limits: Partial<RelayLimits> = {};
  for (const l of LIMIT_FLAGS) limits[l.key] = positiveInt(text(l.flag), l.flag);
  if (limits.messagesPerSecond !== undefined) limits.messageBurst = limits.messagesPerSecond * 2;
  try {
    resolveRelayLimits(limits);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  const store =
    values.store !== undefined
      ? (values.store as string)
      : (fromEnv("SHOAL_STORE") ?? fromEnv("SHOAL_REDIS_URL") ?? "sqlite");
  if (store !== "sqlite" && store !== "memory" && !isRedisUrl(store))
    throw new UsageError(
      `--store (or SHOAL_STORE) must be sqlite, memory or a redis:// URL (redis+cluster://host:port,host:port ` +
        `for a Redis Cluster), not ${JSON.stringify(store)}.`,
    );
  try {
    if (isRedisUrl(store)) parseRedisTarget(store);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  const origins =
    (values.origin as string[] | undefined) ??
    fromEnv("SHOAL_ORIGIN")
      ?.split(",")
      .map((o) => o.trim())
      .filter(Boolean);

  const region = text("region");
  if (region !== undefined && !isRegionName(region))
    throw new UsageError(
      `--region (or SHOAL_REGION) needs 1 to 32 lowercase letters, digits or -, starting with a letter, not ${JSON.stringify(region)}.`,
    );

  return {
    kind: "run",
    options: {
      port: portNumber(text("port") ?? fromEnv("PORT") ?? "8787"),
      host: text("host") ?? "127.0.0.1",
      store,
      dataDir: text("data") ?? "./relay-data",
      redisPrefix: text("redis-prefix") ?? "shoal:",
      allowUnsafeRedis: onOff("allow-unsafe-redis"),
      staticDir: text("static"),
      origins,
      limits,
      verifyThreads: threadCount(text("verify-threads")),
      region,
      quiet: onOff("quiet"),
    },
  };
}

/** True for the store kinds that name a Redis server or a Redis Cluster. */
export function isRedisUrl(kind: string): boolean {
  return isRedisStoreUrl(kind);
}

/** A limit's value: absent, or a positive integer (0 is refused: no limit means "unlimited" nowhere). */
function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(
      `--${flag} (or ${envName(flag)}) needs a positive integer, not ${JSON.stringify(value)}.`,
    );
  }
  return n;
}

function threadCount(value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 64) {
    throw new UsageError(
      `--verify-threads (or SHOAL_VERIFY_THREADS) needs a number from 0 to 64, not ${JSON.stringify(value)}.`,
    );
  }
  return n;
}

function portNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new UsageError(
      `--port (or SHOAL_PORT, PORT) needs a port number from 0 to 65535, not ${JSON.stringify(value)}.`,
    );
  }
  return n;
}
