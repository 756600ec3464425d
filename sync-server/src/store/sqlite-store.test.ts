import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MEMBERSHIP_EPOCH } from "@shoal/client/protocol";
import { makeChain, randomId, sha256, testDevice } from "./commit-fixtures.ts";
import { incomingCommit } from "./incoming-commit.ts";
import { SqliteStore } from "./sqlite-store.ts";
import { runStoreContract } from "./store-contract.ts";

runStoreContract("SqliteStore", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-sqlite-"));
  return {
    store: new SqliteStore(join(dir, "relay.sqlite")),
    cleanup: async () => rmSync(dir, { recursive: true }),
  };
});

describe("SqliteStore on disk", () => {
  it("keeps spaces, commits and heads across a reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-sqlite-"));
    try {
      const file = join(dir, "relay.sqlite");
      const space = randomId();
      const device = testDevice();
      const chain = makeChain(space, device, 3);
      const first = new SqliteStore(file);
      await first.registerSpace(space, sha256(new Uint8Array([1])));
      await first.append(
        space,
        chain.slice(0, 2).map((c) => incomingCommit(c)),
        { quotaBytes: 1 << 20 },
      );
      await first.close();
      const second = new SqliteStore(file);
      expect([...(await second.vector(space))]).toEqual([[device, 2]]);
      // The chain continues from the reopened head's hash.
      const r = await second.append(space, [incomingCommit(chain[2]!)], { quotaBytes: 1 << 20 });
      expect(r.stored.length).toBe(1);
      expect((await second.read(space, new Map(), { maxBytes: 1 << 20, maxCount: 10 })).commits.length).toBe(
        3,
      );
      await second.close();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("keeps the membership log across a reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-sqlite-"));
    try {
      const file = join(dir, "relay.sqlite");
      const space = randomId();
      const texts = ['{"v":1,"test":"first membership operation"}', '{"v":1,"test":"the second one"}'];
      const chain = makeChain(space, testDevice(), 2, {
        epoch: MEMBERSHIP_EPOCH,
        bodies: texts.map((t) => new TextEncoder().encode(t)),
      });
      const first = new SqliteStore(file);
      await first.registerSpace(space, sha256(new Uint8Array([1])));
      await first.append(
        space,
        chain.map((c) => incomingCommit(c)),
        { quotaBytes: 1 << 20 },
      );
      await first.close();
      const second = new SqliteStore(file);
      expect(await second.membershipOps(space)).toEqual(texts);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("keeps the snapshot and its place in the quota across a reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-sqlite-"));
    try {
      const file = join(dir, "relay.sqlite");
      const space = randomId();
      const device = testDevice();
      const chain = makeChain(space, device, 2);
      const blob = new Uint8Array(randomBytes(3 << 20));
      const first = new SqliteStore(file);
      await first.registerSpace(space, sha256(new Uint8Array([1])));
      await first.append(
        space,
        chain.map((c) => incomingCommit(c)),
        { quotaBytes: 1 << 30 },
      );
      expect(await first.putSnapshot(space, new Map([[device, 2]]), blob)).toBe("stored");
      const usage = await first.usage(space);
      await first.close();
      const second = new SqliteStore(file);
      const got = await second.getSnapshot(space);
      expect([...got!.vector]).toEqual([[device, 2]]);
      expect(Buffer.from(got!.bytes).equals(Buffer.from(blob))).toBe(true);
      expect(await second.usage(space)).toEqual(usage);
      // The stored vector still decides what is stale after the reopen.
      expect(await second.putSnapshot(space, new Map([[device, 1]]), blob)).toBe("stale");
      await second.close();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("opens a file made before space claims: old spaces keep their token and have no creator", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-sqlite-"));
    try {
      const file = join(dir, "relay.sqlite");
      const space = randomId();
      const hash = sha256(new Uint8Array([1]));
      // The spaces table as it was before the `creator` column.
      const old = new Database(file);
      old.exec(
        "CREATE TABLE spaces (space TEXT PRIMARY KEY, token_hash BLOB NOT NULL, " +
          "bytes INTEGER NOT NULL DEFAULT 0, commits INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
      );
      old.prepare("INSERT INTO spaces (space, token_hash) VALUES (?, ?)").run(space, hash);
      old.close();
      const store = new SqliteStore(file);
      expect(Buffer.from((await store.tokenHash(space))!).equals(Buffer.from(hash))).toBe(true);
      expect(await store.creator(space)).toBeUndefined();
      const other = randomId();
      const creator = new Uint8Array(randomBytes(32));
      await store.registerSpace(other, hash, creator);
      expect(Buffer.from((await store.creator(other))!).equals(Buffer.from(creator))).toBe(true);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
