import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../index.ts";
import { ValueStore } from "../live/value-store.ts";
import { LOCAL_STATUS, type SyncStatus } from "../status/sync-status.ts";
import { syncStatusStore, useSyncStatus, type SyncStatusSource } from "./use-sync-status.ts";

let n = 0;
const fresh = () => `use-sync-status-${Date.now()}-${n++}`;

function StatusLine(props: { db: SyncStatusSource }) {
  const status = useSyncStatus(props.db);
  return createElement("span", null, `${status.state}/${status.pendingCommits}`);
}

describe("useSyncStatus", () => {
  it("renders the database's current status", async () => {
    const db = await openDatabase({ name: fresh(), collections: { notes: "id" } });
    try {
      expect(renderToString(createElement(StatusLine, { db }))).toBe("<span>local/0</span>");
    } finally {
      db.close();
    }
  });

  it("hands React one store per database that reports each change until unsubscribed", () => {
    const db = { status: new ValueStore<SyncStatus>(LOCAL_STATUS) };
    const store = syncStatusStore(db);
    // React resubscribes when `subscribe` changes identity, so the same database gives the same store.
    expect(syncStatusStore(db)).toBe(store);
    expect(syncStatusStore({ status: new ValueStore<SyncStatus>(LOCAL_STATUS) })).not.toBe(store);
    // useSyncExternalStore requires an unchanged snapshot to be the same object.
    expect(store.getSnapshot()).toBe(store.getSnapshot());

    const seen: SyncStatus[] = [];
    const stop = store.subscribe(() => seen.push(store.getSnapshot()));
    const syncing: SyncStatus = { ...LOCAL_STATUS, state: "syncing", pendingCommits: 2 };
    db.status.set(syncing);
    expect(store.getSnapshot()).toBe(syncing);
    expect(seen.at(-1)).toBe(syncing);
    const before = seen.length;
    stop();
    db.status.set({ ...LOCAL_STATUS, state: "synced" });
    expect(seen.length).toBe(before);
    expect(store.getSnapshot().state).toBe("synced");
  });
});
