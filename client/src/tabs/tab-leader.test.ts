import { afterEach, describe, expect, it, vi } from "vitest";
import { inProcessRelay, type InProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../../test/wait-for.ts";
import { openDatabase } from "../database.ts";
import { memoryTransport } from "../transports/memory-transport.ts";
import type { Transport } from "../transports/transport.ts";
import type { LockManagerLike } from "./tab-leader.ts";

/**
 * Exclusive Web Locks as a browser grants them: one holder per name, the others queued in request
 * order, a queued request withdrawn (AbortError) when its signal aborts, the lock released when the
 * holder's promise settles. Node has no `navigator.locks`; the real BroadcastChannel is Node's own.
 */
class FakeLocks implements LockManagerLike {
  readonly #held = new Set<string>();
  readonly #queues = new Map<string, { grant: () => void; withdraw: () => void }[]>();

  request<T>(
    name: string,
    options: { signal?: AbortSignal },
    callback: (lock: unknown) => Promise<T> | T,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const aborted = () => new DOMException("The request was aborted.", "AbortError");
      if (options.signal?.aborted) return reject(aborted());
      const queue = this.#queues.get(name) ?? [];
      this.#queues.set(name, queue);
      const entry = {
        grant: () => {
          options.signal?.removeEventListener("abort", entry.withdraw);
          Promise.resolve()
            .then(() => callback({ name }))
            .then(resolve, reject)
            .finally(() => {
              this.#held.delete(name);
              this.#pump(name);
            });
        },
        withdraw: () => {
          const i = queue.indexOf(entry);
          if (i < 0) return;
          queue.splice(i, 1);
          reject(aborted());
        },
      };
      options.signal?.addEventListener("abort", entry.withdraw);
      queue.push(entry);
      this.#pump(name);
    });
  }

  #pump(name: string): void {
    if (this.#held.has(name)) return;
    const next = this.#queues.get(name)?.shift();
    if (!next) return;
    this.#held.add(name);
    next.grant();
  }
}

const collections = { patients: "id, name" };
let n = 0;
const fresh = () => `tab-leader-${Date.now()}-${n++}`;

/** A transport to the shared in-process relay that counts its connection attempts. */
function counting(relay: InProcessRelay): { transport: Transport; connects: () => number } {
  let count = 0;
  const transport = memoryTransport((space, token, server, claim) => {
    count += 1;
    return relay.accept(space, token, server, claim);
  });
  return { transport, connects: () => count };
}

const relayCommits = async (relay: InProcessRelay) => (await relay.store.stats()).commits;

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
  vi.unstubAllGlobals();
});

/** Two handles on one database name: two tabs of one browser, as far as IndexedDB and locks go. */
async function twoTabs(withLocks: boolean) {
  vi.stubGlobal("navigator", {
    onLine: true,
    userAgent: "node",
    ...(withLocks ? { locks: new FakeLocks() } : {}),
  });
  const relay = inProcessRelay();
  const name = fresh();
  const a = await openDatabase({ name, collections, persist: false });
  const b = await openDatabase({ name, collections, persist: false });
  cleanup.push(async () => {
    await a.close();
    await b.close();
    await relay.close();
  });
  return { relay, a, b, ta: counting(relay), tb: counting(relay) };
}

describe("tab leader election", () => {
  it("runs one engine per browser; the follower mirrors the leader's status and takes over when it stops", async () => {
    const { relay, a, b, ta, tb } = await twoTabs(true);
    const stopA = a.sync({ transports: [ta.transport] });
    await waitFor(a.status, (s) => s.role === "leader" && s.state === "synced", 10_000, "a leads");
    b.sync({ transports: [tb.transport] });
    // Nothing changes in the leader now: the follower learns its status by asking (hello).
    const followed = await waitFor(
      b.status,
      (s) => s.role === "follower" && s.state === "synced",
      10_000,
      "b follows",
    );
    expect(followed.transports).toEqual(a.status.get().transports);
    expect(ta.connects()).toBe(1); // the private space, through the leader only
    expect(tb.connects()).toBe(0);

    // The follower's commit reaches the relay through the leader's engine (shared IndexedDB).
    await b.patients.insert({ name: "written in b" });
    await vi.waitFor(async () => expect(await relayCommits(relay)).toBe(1), { timeout: 10_000 });
    await waitFor(
      b.status,
      (s) => s.role === "follower" && s.pendingCommits === 0 && s.state === "synced",
      10_000,
      "b sees the ack",
    );

    stopA();
    expect(a.status.get().role).toBeUndefined();
    expect(a.status.get().state).toBe("local");
    await waitFor(b.status, (s) => s.role === "leader" && s.state === "synced", 10_000, "b takes over");
    expect(tb.connects()).toBe(1);
    expect(ta.connects()).toBe(1);

    // The old leader's tab still writes; the new leader uploads it, and only it.
    await a.patients.insert({ name: "written in a" });
    await vi.waitFor(async () => expect(await relayCommits(relay)).toBe(2), { timeout: 10_000 });
    expect(relay.metrics.duplicates).toBe(0);
  });

  it("close() hands the connections over at once, and a follower's reconnect() reaches the leader", async () => {
    const { a, b, ta, tb } = await twoTabs(true);
    b.sync({ transports: [tb.transport] });
    await waitFor(b.status, (s) => s.role === "leader" && s.state === "synced", 10_000, "b leads");
    a.sync({ transports: [ta.transport] });
    await waitFor(a.status, (s) => s.role === "follower" && s.state === "synced", 10_000, "a follows");

    a.reconnect();
    await vi.waitFor(() => expect(tb.connects()).toBe(2), { timeout: 10_000 });
    expect(ta.connects()).toBe(0);

    await b.close();
    await waitFor(a.status, (s) => s.role === "leader" && s.state === "synced", 10_000, "a takes over");
    expect(ta.connects()).toBe(1);
  });

  it("publishSnapshot() in a follower tab is done by the leader, which holds the connections", async () => {
    const { relay, a, b, ta, tb } = await twoTabs(true);
    a.sync({ transports: [ta.transport], snapshots: { publishEvery: 0 } });
    await waitFor(a.status, (s) => s.role === "leader" && s.state === "synced", 10_000, "a leads");
    b.sync({ transports: [tb.transport], snapshots: { publishEvery: 0 } });
    await waitFor(b.status, (s) => s.role === "follower", 10_000, "b follows");
    await b.patients.insert({ name: "in the snapshot" });
    await vi.waitFor(async () => expect(await relayCommits(relay)).toBe(1), { timeout: 10_000 });
    const commit = (await b.exportCommits({}))[0]!.id;
    await vi.waitFor(async () => expect((await b.durability(commit)).relay).toBe(true), { timeout: 10_000 });
    expect(await b.publishSnapshot(b.privateSpace)).toBe(true);
    expect((await relay.store.getSnapshot(b.privateSpace))?.vector.get(b.deviceId)).toBe(1);
    expect(tb.connects()).toBe(0);
  });

  it("syncs alone, as role single, without Web Locks or with leaderElection: false", async () => {
    const { a, b, ta, tb } = await twoTabs(false);
    a.sync({ transports: [ta.transport] });
    b.sync({ transports: [tb.transport] });
    await waitFor(a.status, (s) => s.role === "single" && s.state === "synced", 10_000, "a syncs");
    await waitFor(b.status, (s) => s.role === "single" && s.state === "synced", 10_000, "b syncs");
    expect([ta.connects(), tb.connects()]).toEqual([1, 1]);

    vi.stubGlobal("navigator", { onLine: true, userAgent: "node", locks: new FakeLocks() });
    const stop = a.sync({ transports: [ta.transport], leaderElection: false });
    await waitFor(a.status, (s) => s.role === "single" && s.state === "synced", 10_000, "a syncs again");
    stop();
    expect(a.status.get().role).toBeUndefined();
    expect(a.status.get().state).toBe("local");
  });
});
