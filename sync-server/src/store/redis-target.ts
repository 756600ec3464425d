/** One Redis server, or the seed nodes of a Redis Cluster, as named by a store URL. */
export type RedisTarget =
  | { kind: "single"; url: string }
  | {
      kind: "cluster";
      /** Seed nodes; the client learns the others (and which owns which slot) from them. */
      nodes: { host: string; port: number }[];
      username?: string;
      password?: string;
      tls: boolean;
    };

// `redis+cluster://[user:password@]host:port,host:port[/]`, or `rediss+cluster://` for TLS. A URL
// rather than a second flag, so `--store` and `SHOAL_REDIS_URL` keep naming the whole store in one value.
const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)\/?$/;

/**
 * Reads a Redis store URL: `redis://` / `rediss://` for one server, `redis+cluster://` /
 * `rediss+cluster://` with comma-separated seed nodes for a Redis Cluster (which has only database 0,
 * so the cluster form takes no `/db`). Throws on a malformed cluster URL.
 *
 * @example
 * parseRedisTarget("redis+cluster://:secret@10.0.0.1:7000,10.0.0.2:7000");
 * // { kind: "cluster", nodes: [{ host: "10.0.0.1", port: 7000 }, ...], password: "secret", tls: false }
 */
export function parseRedisTarget(url: string): RedisTarget {
  if (!url.includes("+cluster://")) return { kind: "single", url };
  const match = CLUSTER_URL.exec(url);
  if (!match)
    throw new Error(`Not a Redis Cluster URL (redis+cluster://host:port,host:port): ${redact(url)}`);
  const [, scheme, auth, hostList] = match;
  const nodes = hostList!.split(",").map((hostPort) => {
    const at = hostPort.lastIndexOf(":");
    const host = hostPort.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    const port = Number(hostPort.slice(at + 1));
    if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535)
      throw new Error(`A Redis Cluster node needs host:port, not ${JSON.stringify(hostPort)}.`);
    return { host, port };
  });
  const target: RedisTarget = { kind: "cluster", nodes, tls: scheme === "rediss" };
  if (auth) {
    const colon = auth.indexOf(":");
    const user = decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon));
    if (user) target.username = user;
    if (colon >= 0) target.password = decodeURIComponent(auth.slice(colon + 1));
  }
  return target;
}

/**
 * True for the URL schemes that name a Redis store (one server or a cluster).
 *
 * @example
 * isRedisStoreUrl("redis+cluster://127.0.0.1:7000"); // true
 */
export function isRedisStoreUrl(url: string): boolean {
  return /^rediss?(\+cluster)?:\/\//.test(url);
}

/** The URL without its credentials, for error messages and logs. */
function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}
