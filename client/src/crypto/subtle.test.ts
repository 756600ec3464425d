// Where the page has no WebCrypto (plain http from a LAN address) or no IndexedDB, Shoal says so with a
// typed error instead of failing later with "Cannot read properties of undefined" (issue 14 item 7).
import "fake-indexeddb/auto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { openDatabase } from "../database.ts";
import { InsecureContext } from "../errors.ts";
import { sha256 } from "./sha256.ts";

const realCrypto = globalThis.crypto;
/** What an insecure context has: random numbers, but no `subtle`. */
const insecureCrypto = { getRandomValues: (a: Uint8Array) => realCrypto.getRandomValues(a) };

afterEach(() => vi.unstubAllGlobals());

describe("InsecureContext", () => {
  it("opening works without WebCrypto (data stays local), and sync says why it cannot start", async () => {
    vi.stubGlobal("crypto", insecureCrypto);
    const db = await openDatabase({ name: `insecure-${Math.random()}`, collections: { notes: "id" } });
    await db.notes.insert({ text: "kept on this device" });
    expect(await db.notes.count()).toBe(1);
    let thrown: unknown;
    try {
      db.sync({ relay: "ws://127.0.0.1:9" });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(InsecureContext);
    expect(thrown).toMatchObject({ code: "InsecureContext", missing: "WebCrypto" });
    expect((thrown as Error).message).toMatch(/secure context.*https.*localhost/);
    await expect(sha256(new Uint8Array([1]))).rejects.toBeInstanceOf(InsecureContext);
    vi.unstubAllGlobals();
    await db.close();
  });

  it("opening without IndexedDB is refused with a message a person understands", async () => {
    vi.stubGlobal("indexedDB", undefined);
    const err = await openDatabase({ name: "no-idb", collections: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsecureContext);
    expect(err).toMatchObject({ missing: "IndexedDB" });
    expect((err as Error).message).toMatch(/IndexedDB/);
  });
});
