import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toHex } from "@shoal/client/protocol";
import { makeChain, randomId, sha256, testDevice } from "./commit-fixtures.ts";
import { incomingCommit } from "./incoming-commit.ts";
import { SqliteStore, type StoreBatch } from "./sqlite-store.ts";

const QUOTA = { quotaBytes: 1 << 30 };
const ALL = { maxBytes: 1 << 30, maxCount: 10_000 };
const inc = (bytes: Uint8Array[]) => bytes.map((b) => incomingCommit(b));

describe("SqliteStore group commit", () => {
  let dir: string;
  let file: string;
  let store: SqliteStore;
  let batches: StoreBatch[];
  // Set by a test to make the next group transaction fail just before COMMIT.
  let failNext: Error | undefined;
  let spaces: string[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "shoal-group-"));
    file = join(dir, "relay.sqlite");
    batches = [];
    failNext = undefined;
    store = new SqliteStore(file, {
      onBatch: (b) => batches.push(b),
      beforeCommit: () => {
        const error = failNext;
        failNext = undefined;
        if (error) throw error;
      },
    });
    spaces = [randomId(), randomId(), randomId()];
    for (const s of spaces) await store.registerSpace(s, sha256(new Uint8Array([1])));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs appends from different spaces and devices, called in one turn, in one transaction", async () => {
    const [s1, s2, s3] = spaces as [string, string, string];
    const [a, b, c] = [testDevice(), testDevice(), testDevice()];
    const results = await Promise.all([
      store.append(s1, inc(makeChain(s1, a, 3)), QUOTA),
      store.append(s2, inc(makeChain(s2, b, 2)), QUOTA),
      store.append(s3, inc(makeChain(s3, c, 1)), QUOTA),
    ]);
    expect(results.map((r) => r.stored.length)).toEqual([3, 2, 1]);
    expect(batches).toEqual([{ appends: 3, commits: 6 }]);
    // Appends of a later turn make a transaction of their own.
    await store.append(s1, inc(makeChain(s1, testDevice(), 1)), QUOTA);
    expect(batches).toEqual([
      { appends: 3, commits: 6 },
      { appends: 1, commits: 1 },
    ]);
  });

  it("lets a later call of the group see an earlier one's commits, as if they ran one after the other", async () => {
    const [s1] = spaces as [string];
    const d = testDevice();
    const chain = makeChain(s1, d, 4);
    const [first, second, again] = await Promise.all([
      store.append(s1, inc(chain.slice(0, 2)), QUOTA),
      store.append(s1, inc(chain.slice(2)), QUOTA),
      store.append(s1, inc(chain.slice(1, 3)), QUOTA),
    ]);
    expect(first.stored.map((c) => c.seq)).toEqual([1, 2]);
    expect(second.stored.map((c) => c.seq)).toEqual([3, 4]);
    expect(again).toMatchObject({ stored: [], duplicates: 2 });
    expect(again.heads.get(d)).toBe(4);
    expect(batches).toEqual([{ appends: 3, commits: 4 }]);
  });

  it("keeps a refusal within its own call: the other calls of the group store everything", async () => {
    const [s1, s2] = spaces as [string, string];
    const [a, b, c] = [testDevice(), testDevice(), testDevice()];
    const chainA = makeChain(s1, a, 3);
    const chainB = makeChain(s1, b, 2);
    const chainC = makeChain(s2, c, 2);
    const [gapped, sameSpace, otherSpace] = await Promise.all([
      store.append(s1, inc([chainA[0]!, chainA[2]!, chainA[1]!]), QUOTA),
      store.append(s1, inc(chainB), QUOTA),
      store.append(s2, inc(chainC), QUOTA),
    ]);
    expect(gapped.stored.map((c) => c.seq)).toEqual([1]);
    expect(gapped.refused).toEqual({ device: a, seq: 3, code: "gap", index: 1 });
    expect(sameSpace.refused).toBeUndefined();
    expect(sameSpace.stored.map((c) => c.seq)).toEqual([1, 2]);
    expect(otherSpace.stored.map((c) => c.seq)).toEqual([1, 2]);
    expect(new Map(await store.vector(s1))).toEqual(
      new Map([
        [a, 1],
        [b, 2],
      ]),
    );
    expect(batches).toEqual([{ appends: 3, commits: 5 }]);
  });

  it("fails only the call for an unregistered space, and stores the others of its group", async () => {
    const [s1] = spaces as [string];
    const d = testDevice();
    const unknown = randomId();
    const [bad, good] = await Promise.allSettled([
      store.append(unknown, inc(makeChain(unknown, testDevice(), 1)), QUOTA),
      store.append(s1, inc(makeChain(s1, d, 2)), QUOTA),
    ]);
    expect(bad.status).toBe("rejected");
    expect(good.status === "fulfilled" && good.value.stored.length).toBe(2);
    expect(await store.usage(unknown)).toEqual({ commits: 0, bytes: 0 });
    expect(batches).toEqual([{ appends: 2, commits: 2 }]);
  });

  it("rejects every call of a transaction that fails, and loses nothing acknowledged before it", async () => {
    const [s1, s2] = spaces as [string, string];
    const [a, b] = [testDevice(), testDevice()];
    const chainA = makeChain(s1, a, 3);
    const chainB = makeChain(s2, b, 2);
    const acked = await store.append(s1, inc(chainA.slice(0, 1)), QUOTA);
    expect(acked.stored.length).toBe(1);
    // What better-sqlite3 throws when the disk is full at COMMIT.
    failNext = new Database.SqliteError("database or disk is full", "SQLITE_FULL");
    const failed = await Promise.allSettled([
      store.append(s1, inc(chainA.slice(1)), QUOTA),
      store.append(s2, inc(chainB), QUOTA),
    ]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(failed.map((r) => r.status === "rejected" && (r.reason as { code?: string }).code)).toEqual([
      "SQLITE_FULL",
      "SQLITE_FULL",
    ]);
    // Only what was acknowledged is there, also for a new connection to the file.
    await store.close();
    store = new SqliteStore(file);
    expect([...(await store.vector(s1))]).toEqual([[a, 1]]);
    expect([...(await store.vector(s2))]).toEqual([]);
    expect((await store.read(s1, new Map(), ALL)).commits.map(toHex)).toEqual([toHex(chainA[0]!)]);
    expect(await store.usage(s1)).toEqual({ commits: 1, bytes: chainA[0]!.length });
    // The devices re-upload what was not acknowledged, and it is stored.
    const retried = await Promise.all([
      store.append(s1, inc(chainA.slice(1)), QUOTA),
      store.append(s2, inc(chainB), QUOTA),
    ]);
    expect(retried.map((r) => r.stored.length)).toEqual([2, 2]);
  });

  it("fails the whole group when the database fails inside one call, not only that call's savepoint", async () => {
    const [s1, s2] = spaces as [string, string];
    const [a, b] = [testDevice(), testDevice()];
    const chainA = makeChain(s1, a, 2);
    const chainB = makeChain(s2, b, 1);
    // A trigger makes SQLite itself fail on the second space's insert, as a full disk would mid-write.
    const other = new Database(file);
    other.exec(
      `CREATE TRIGGER fail_insert BEFORE INSERT ON commits WHEN NEW.space = '${s2}' ` +
        "BEGIN SELECT RAISE(ABORT, 'simulated I/O failure'); END",
    );
    const failed = await Promise.allSettled([
      store.append(s1, inc(chainA), QUOTA),
      store.append(s2, inc(chainB), QUOTA),
    ]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(failed.every((r) => r.status === "rejected" && r.reason instanceof Database.SqliteError)).toBe(
      true,
    );
    expect([...(await store.vector(s1))]).toEqual([]);
    expect(batches).toEqual([]);
    other.exec("DROP TRIGGER fail_insert");
    other.close();
    const retried = await Promise.all([
      store.append(s1, inc(chainA), QUOTA),
      store.append(s2, inc(chainB), QUOTA),
    ]);
    expect(retried.map((r) => r.stored.length)).toEqual([2, 1]);
    expect(batches).toEqual([{ appends: 2, commits: 3 }]);
  });

  it("runs the appends still waiting when it is closed", async () => {
    const [s1] = spaces as [string];
    const d = testDevice();
    const pending = store.append(s1, inc(makeChain(s1, d, 2)), QUOTA);
    await store.close();
    expect((await pending).stored.length).toBe(2);
    store = new SqliteStore(file);
    expect([...(await store.vector(s1))]).toEqual([[d, 2]]);
  });
});
