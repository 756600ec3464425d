import { Cluster, Redis } from "ioredis";
import type { RedisTarget } from "./redis-target.ts";

/** A connection to one Redis server or to a whole Redis Cluster: the commands the relay uses are the same. */
export type RedisClient = Redis | Cluster;

/**
 * What the connection is for. `command` fails fast while disconnected (a queued append would hold its
 * ack hostage); `subscriber` in a cluster opens one sharded-pub/sub connection per master, because a
 * shard channel is served only by the shard that owns its slot.
 */
export type RedisRole = "command" | "subscriber";

// Reconnect quickly at first, then once a second: an outage costs acks, and devices retry anyway.
const retryDelay = (attempt: number) => Math.min(50 * attempt, 1_000);

/**
 * A lazily connecting client for `target` (call `connect()`). For one server: no offline queue, one
 * retry per request. For a cluster: ioredis follows MOVED/ASK redirections and, when a master fails,
 * re-reads the slot map and retries the command on the promoted replica (`retryDelayOnFailover`);
 * reads go to masters only, because a replica may lag behind what was acknowledged.
 *
 * @example
 * const client = createRedisClient(parseRedisTarget(url), "command");
 * await client.connect();
 */
export function createRedisClient(target: RedisTarget, role: RedisRole): RedisClient {
  if (target.kind === "single") {
    return new Redis(target.url, {
      lazyConnect: true,
      // Fail at once while disconnected instead of queueing: a queued append would hold its ack
      // hostage for as long as Redis is down, and /healthz must answer 503 quickly.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 5_000,
      retryStrategy: retryDelay,
    });
  }
  return new Cluster(target.nodes, {
    lazyConnect: true,
    // While the cluster client itself is (re)connecting, fail rather than queue, as for one server.
    // Not in `redisOptions`: per-node connections are lazy, and without a queue their first command
    // would fail before the connection is even attempted.
    enableOfflineQueue: false,
    scaleReads: "master",
    shardedSubscribers: role === "subscriber",
    clusterRetryStrategy: retryDelay,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2_000,
    redisOptions: {
      username: target.username,
      password: target.password,
      tls: target.tls ? {} : undefined,
      connectTimeout: 5_000,
      maxRetriesPerRequest: 1,
    },
  });
}

/**
 * The servers behind a client that answer now: the client itself for one server, every reachable node
 * (masters and replicas: a replica may be promoted) for a cluster.
 *
 * @example
 * for (const node of await reachableNodes(client)) await node.config("GET", "appendfsync");
 */
export async function reachableNodes(client: RedisClient): Promise<Redis[]> {
  if (client instanceof Redis) return [client];
  const nodes = client.nodes("all");
  const alive = await Promise.all(
    nodes.map((node) =>
      node.ping().then(
        () => true,
        () => false,
      ),
    ),
  );
  return nodes.filter((_, i) => alive[i]);
}
