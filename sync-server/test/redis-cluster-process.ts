import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { Redis } from "ioredis";
import { DURABLE_REDIS_ARGS, REDIS_SERVER, RedisProcess } from "./redis-process.ts";

/** Where Debian's `redis-cli` lives (it creates the cluster); `REDIS_CLI` overrides it. */
export const REDIS_CLI = process.env.REDIS_CLI ?? "/usr/bin/redis-cli";

/**
 * Why the cluster tests cannot run here, or `undefined` when they can. Only a missing binary skips
 * them; anything else that goes wrong fails them.
 *
 * @example
 * describe.skipIf(CLUSTER_UNAVAILABLE)("on a Redis Cluster", () => { ... });
 */
export const CLUSTER_UNAVAILABLE: string | undefined = [REDIS_SERVER, REDIS_CLI]
  .filter((binary) => !existsSync(binary))
  .map((binary) => `${binary} is missing (apt-get install redis-server, or set REDIS_SERVER / REDIS_CLI)`)[0];

// How long the cluster may take to form or to fail over before the test is told why.
const SETTLE_TIMEOUT_MS = 20_000;
const POLL_MS = 50;

/** Options of `RedisCluster.start`. */
export interface RedisClusterOptions {
  /** Masters, each owning a third (or so) of the 16,384 slots. Default 3, the smallest legal cluster. */
  masters?: number;
  /** Replicas per master (0 or 1 here). Default 0. */
  replicas?: number;
}

/**
 * A Redis Cluster of `redis-server` children on loopback ports, each durable like `RedisProcess`
 * (`--appendonly yes --appendfsync always`), formed with `redis-cli --cluster create`. A short node
 * timeout (1 s) makes a failover take seconds, not the default 15 s; replicas may always be promoted
 * however long they were cut off (`cluster-replica-validity-factor 0`), since the failover test cuts
 * one off on purpose.
 *
 * @example
 * const cluster = await RedisCluster.start({ masters: 3 });
 * const store = await RedisStore.open({ url: cluster.url });
 * await cluster.dispose();
 */
export class RedisCluster {
  readonly nodes: readonly RedisProcess[];

  private constructor(nodes: RedisProcess[]) {
    this.nodes = nodes;
  }

  /** Starts the servers, forms the cluster and resolves once every node reports it healthy. */
  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const replicas = options.replicas ?? 0;
    const args = [
      ...DURABLE_REDIS_ARGS,
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      "nodes.conf", // relative to the node's own --dir
      "--cluster-node-timeout",
      "1000",
      "--cluster-replica-validity-factor",
      "0",
    ];
    const started = await Promise.allSettled(
      Array.from({ length: masters * (1 + replicas) }, () => RedisProcess.start(args)),
    );
    const nodes = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const cluster = new RedisCluster(nodes);
    try {
      const failed = started.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
      await redisCli([
        "--cluster",
        "create",
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ]);
      // Every node must also know every replica (gossip spreads that a moment after the replication
      // link is up), or shardOf, asking any node, could miss a master's replica.
      await cluster.settled(nodes, async (roles) => {
        if (roles.filter((r) => r === "master").length !== masters) return false;
        const views = await Promise.all(nodes.map((n) => ask(n, "CLUSTER", "NODES") as Promise<string>));
        return views.every((v) => (v.match(/[ ,]slave /g) ?? []).length === masters * replicas);
      });
    } catch (e) {
      await cluster.dispose();
      throw e;
    }
    return cluster;
  }

  /** `redis+cluster://` with every node as a seed, as a relay would be configured. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`;
  }

  /**
   * The master serving `key`'s slot, and its replica if it has one.
   *
   * @example
   * const { master, replica } = await cluster.shardOf(`shoal:{${space}}:meta`);
   */
  async shardOf(key: string): Promise<{ slot: number; master: RedisProcess; replica?: RedisProcess }> {
    const running = this.nodes.find((n) => n.running)!;
    const slot = (await ask(running, "CLUSTER", "KEYSLOT", key)) as number;
    // CLUSTER NODES rather than CLUSTER SLOTS: Redis 7.0 leaves a replica out of CLUSTER SLOTS until
    // it has replicated some write, and a fresh cluster has none.
    const lines = ((await ask(running, "CLUSTER", "NODES")) as string).trim().split("\n");
    const nodes = lines.map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.split(" ");
      const port = Number(/:(\d+)@/.exec(address!)![1]);
      return { id: id!, port, flags: flags!.split(","), masterId: masterId!, slots };
    });
    const serves = (range: string) => {
      const [from, to = from] = range.split("-").map(Number);
      return from! <= slot && slot <= to!;
    };
    const master = nodes.find((n) => n.flags.includes("master") && n.slots.some(serves));
    if (!master) throw new Error(`No node serves slot ${slot}.`);
    const replica = nodes.find((n) => n.masterId === master.id && !n.flags.includes("fail"));
    const byPort = (port: number) => this.nodes.find((n) => n.port === port)!;
    return { slot, master: byPort(master.port), replica: replica && byPort(replica.port) };
  }

  /**
   * Resolves once `replica` has taken over as a master and every running node sees the cluster
   * healthy again: polls CLUSTER NODES and CLUSTER INFO (Redis state, no fixed sleeps), bounded.
   */
  async promoted(replica: RedisProcess): Promise<void> {
    const others = this.nodes.filter((n) => n.running);
    await this.settled(others, async () => {
      const nodes = (await ask(replica, "CLUSTER", "NODES")) as string;
      return /myself,master/.test(nodes);
    });
  }

  /** Kills every node and deletes its directory. */
  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }

  /**
   * Polls until every node of `nodes` reports `cluster_state:ok` with all slots assigned and, for a
   * replica, its link to its master up, and `extra` (given each node's role) holds.
   */
  private async settled(
    nodes: readonly RedisProcess[],
    extra: (roles: string[]) => boolean | Promise<boolean>,
  ): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const states = await Promise.all(
          nodes.map(async (n) => {
            const info = (await ask(n, "CLUSTER", "INFO")) as string;
            const replication = (await ask(n, "INFO", "replication")) as string;
            const role = /role:(\w+)/.exec(replication)?.[1] ?? "?";
            const ok =
              info.includes("cluster_state:ok") &&
              info.includes("cluster_slots_ok:16384") &&
              (role === "master" || replication.includes("master_link_status:up"));
            return { ok, role, summary: `${n.port} ${role} ${/cluster_state:\w+/.exec(info)?.[0]}` };
          }),
        );
        last = states.map((s) => s.summary).join(", ");
        if (states.every((s) => s.ok) && (await extra(states.map((s) => s.role)))) return;
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error(`The Redis Cluster did not settle within ${SETTLE_TIMEOUT_MS} ms: ${last}`);
  }
}

/** One command on one node over a short-lived connection that never retries (the node may be dead). */
async function ask(node: RedisProcess, ...command: [string, ...string[]]): Promise<unknown> {
  const client = new Redis(node.port, "127.0.0.1", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2_000,
  });
  client.on("error", () => {}); // the rejected command says it
  try {
    await client.connect();
    return await client.call(...command);
  } finally {
    client.disconnect();
  }
}

/** Runs redis-cli with a time bound; rejects with its output when it fails. */
async function redisCli(args: string[]): Promise<void> {
  const child = spawn(REDIS_CLI, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`redis-cli ${args.join(" ")} took longer than ${SETTLE_TIMEOUT_MS} ms:\n${output}`));
    }, SETTLE_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`redis-cli ${args.join(" ")} exited with ${code}:\n${output}`));
    });
  });
}
