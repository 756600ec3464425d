import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeChain, randomId, sha256 } from "./commit-fixtures.ts";
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
      const device = randomId();
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
});
