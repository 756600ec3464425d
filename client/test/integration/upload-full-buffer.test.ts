import { afterEach, expect, it } from "vitest";
import { openDatabase } from "../../src/index.ts";
import type { Transport } from "../../src/transports/transport.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A transport whose send buffer reads as full while `full.value` is set, and drains without any event;
 * `full.looks` counts how often the session looked at it while full.
 */
function withBuffer(inner: Transport, full: { value: boolean; looks: number }): Transport {
  return {
    kind: inner.kind,
    get label() {
      return inner.label;
    },
    connect(space, token, handlers, claim) {
      const conn = inner.connect(space, token, handlers, claim);
      return {
        send: (frame) => conn.send(frame),
        close: (reason) => conn.close(reason),
        get bufferedAmount() {
          if (!full.value) return conn.bufferedAmount;
          full.looks++;
          return 64 * 1024 * 1024;
        },
      };
    },
  };
}

// Found by the bench at 100,000 records: commits made while a large snapshot filled the socket's send
// buffer stayed pending for good, since a socket reports no drain and no ack was due.
it("uploads commits made while the send buffer was full once it drains, with no new commit to prompt it", async () => {
  const relay = inProcessRelay();
  const full = { value: false, looks: 0 };
  const db = await openDatabase<{ notes: { text: string } }>({
    name: "full-buffer",
    collections: { notes: "id" },
  });
  cleanups.push(() => db.close());
  const space = await db.createSpace({ name: "S" });
  cleanups.push(db.sync({ transports: [withBuffer(memoryTransport(relay.accept), full)] }));
  await db.notes.insert({ text: "first" }, { space });
  await waitFor(db.status, (s) => s.state === "synced" && s.pendingCommits === 0, 10_000, "first upload");

  full.value = true;
  for (let k = 0; k < 3; k++) await db.notes.insert({ text: `while full ${k}` }, { space });
  await waitFor(db.status, (s) => s.pendingCommits === 3, 10_000, "3 pending");
  // Every prompt a commit gives has come and gone by now, or comes later and changes nothing: the
  // session must keep looking at the buffer by itself (without that it never looked again here).
  const seen = full.looks;
  await expect.poll(() => full.looks, { timeout: 5_000 }).toBeGreaterThan(seen + 3);
  full.value = false;
  await waitFor(db.status, (s) => s.pendingCommits === 0, 10_000, "uploaded after the drain");
  expect(db.status.get().pendingCommits).toBe(0);
});
