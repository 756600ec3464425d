import { describe, expect, it } from "vitest";
import { ValidationError } from "./errors.ts";
import { openDatabase } from "./index.ts";
import { LazySync } from "./lazy-sync.ts";
import { ValueStore } from "./live/value-store.ts";
import { LOCAL_STATUS, type SyncStatus } from "./status/sync-status.ts";
import type { Transport } from "./transports/transport.ts";
import type { SpaceId } from "./types.ts";

let n = 0;
const fresh = () => `db-lazy-sync-${Date.now()}-${n++}`;

/** A transport that records each connection attempt (`first` resolves with the first) and never opens. */
function recordingTransport(): Transport & { spaces: string[]; first: Promise<string> } {
  const spaces: string[] = [];
  let connected: (space: string) => void = () => {};
  const first = new Promise<string>((resolve) => (connected = resolve));
  return {
    kind: "test",
    label: "recording",
    spaces,
    first,
    connect: (space) => {
      spaces.push(space);
      connected(space);
      return { send: () => {}, close: () => {}, bufferedAmount: 0 };
    },
  };
}

async function host() {
  const db = await openDatabase({ name: fresh(), collections: { notes: "id" }, persist: false });
  const status = new ValueStore<SyncStatus>(LOCAL_STATUS);
  return {
    db,
    status,
    host: {
      name: db.name,
      replica: db.replica,
      status,
      vector: (spaces?: readonly SpaceId[]) => db.vector(spaces),
      applyCommits: (commits: Parameters<typeof db.applyCommits>[0]) => db.applyCommits(commits),
      exportCommits: (since: Parameters<typeof db.exportCommits>[0]) => db.exportCommits(since),
    },
  };
}

describe("LazySync (db.sync loads the sync code on first use)", () => {
  it("refuses options with nothing to sync with at once, before loading anything", async () => {
    const { db } = await host();
    expect(() => db.sync({})).toThrow(ValidationError);
    expect(() => db.sync({ transports: [] })).toThrow(ValidationError);
    await db.close();
  });

  it("starts the runner once loaded: the transport is asked to connect the private space", async () => {
    const { db, host: h } = await host();
    const transport = recordingTransport();
    const run = new LazySync(h, { transports: [transport], leaderElection: false });
    // publishSnapshot waits for the runner, so it settles only once the code has loaded and started.
    await expect(run.publishSnapshot(db.privateSpace)).rejects.toThrow();
    expect(await transport.first).toBe(db.privateSpace);
    run.stop();
    await db.close();
  });

  it("stopped before its code arrives, it never starts", async () => {
    const { db, host: h, status } = await host();
    const transport = recordingTransport();
    const run = new LazySync(h, { transports: [transport], leaderElection: false });
    run.stop();
    await expect(run.publishSnapshot(db.privateSpace)).rejects.toThrow(/needs sync\(\) running/);
    expect(transport.spaces).toEqual([]);
    expect(status.get()).toBe(LOCAL_STATUS);
    await db.close();
  });
});
