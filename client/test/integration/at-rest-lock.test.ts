// Issue 16, item 7: encryption at rest. Two devices with locked databases share a space through a real
// relay; one writes records holding a canary in a non-indexed field and in a text field. Once locked,
// each database's IndexedDB, read directly (every object store, keys and values, raw IndexedDB API),
// holds no canary (not as text, not as UTF-8 or UTF-16 bytes, not inside anything Automerge can load)
// and no key: not the space key, not the device's private keys, not the data key. The same scan of an
// unlocked database finds the canary (the scan works). Unlocked with the passphrase, everything reads
// back and syncs on; a wrong passphrase fails typed.
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  Locked,
  openDatabase,
  WrongPassphrase,
  type DatabaseCore,
  type MembersView,
} from "../../src/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { scanIndexedDb, type Secrets } from "../idb-scan.ts";
import { disposeAllRelays, RelayHarness, relayAcknowledged, relayTransport } from "../relay-harness.ts";
import { waitFor } from "../wait-for.ts";

const CANARY = "canary-at-rest-3f9a1c";
const CANARY_TEXT = "canary-text-8e2b47";
const INDEXED = "Indexed-title-5d0c";
/** People's names, which a space with members keeps (opened) on every member device. */
const NAME = "Canaryname-6a1f";
const collections = { notes: { indexes: "id, title", text: ["body"] } };
let n = 0;
const fresh = (label: string) => `at-rest-${label}-${process.pid}-${Date.now()}-${n++}`;

afterEach(async () => {
  vi.restoreAllMocks();
  await disposeAllRelays();
});

/**
 * Records what WebCrypto is handed and returns while `fn` runs: the PKCS#8 device keys a locked database
 * exports (to store them encrypted) and the 32-byte data key it wraps under the passphrase.
 */
async function capturingKeys<T>(fn: () => Promise<T>): Promise<{ result: T; keys: Uint8Array[] }> {
  const s = crypto.subtle;
  const exportKey = s.exportKey.bind(s);
  const encrypt = s.encrypt.bind(s);
  const keys: Uint8Array[] = [];
  vi.spyOn(s, "exportKey").mockImplementation((async (format: KeyFormat, key: CryptoKey) => {
    const out = await exportKey(format as "pkcs8", key);
    if (format === "pkcs8") keys.push(new Uint8Array(out as ArrayBuffer).slice());
    return out;
  }) as typeof s.exportKey);
  vi.spyOn(s, "encrypt").mockImplementation((async (
    alg: AesGcmParams,
    key: CryptoKey,
    data: BufferSource,
  ) => {
    const bytes = ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);
    if (alg.name === "AES-GCM" && bytes.length === 32) keys.push(bytes.slice());
    return encrypt(alg, key, data);
  }) as typeof s.encrypt);
  try {
    return { result: await fn(), keys };
  } finally {
    vi.restoreAllMocks();
  }
}

/** Every key a disk thief must not find: PKCS#8 keys whole and their 32-byte private scalars, data keys, space keys. */
async function secretsOf(db: { replica: DatabaseCore["replica"] }, captured: Uint8Array[]): Promise<Secrets> {
  const bytes: { label: string; bytes: Uint8Array }[] = [];
  for (const [i, k] of captured.entries()) {
    bytes.push({ label: `captured key ${i}`, bytes: k });
    if (k.length > 32) bytes.push({ label: `private scalar ${i}`, bytes: k.slice(-32) });
  }
  for (const s of await db.replica.dexie.table<SpaceRow>("_spaces").toArray()) {
    bytes.push({ label: `space key ${s.name}`, bytes: s.key });
    for (const [e, k] of Object.entries(s.epochKeys ?? {})) bytes.push({ label: `epoch ${e} key`, bytes: k });
  }
  return { strings: [CANARY, CANARY_TEXT, NAME], bytes };
}

/** The first value an observable delivers. */
function firstOf<T>(obs: { subscribe(next: (v: T) => void): { unsubscribe(): void } }): Promise<T> {
  return new Promise((resolve) => {
    const sub = obs.subscribe((v) => {
      queueMicrotask(() => sub.unsubscribe());
      resolve(v);
    });
  });
}

describe("encryption at rest (issue 16 item 7)", () => {
  it("a locked database's IndexedDB holds no canary and no key; unlocked, it reads back and syncs on", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const nameA = fresh("a");
    const nameB = fresh("b");
    const { result: a, keys: keysA } = await capturingKeys(() =>
      openDatabase({ name: nameA, collections, lock: { passphrase: "pin-a-2468" } }),
    );
    const { result: b, keys: keysB } = await capturingKeys(() =>
      openDatabase({ name: nameB, collections, lock: { passphrase: "pin-b-1357" } }),
    );
    // Two PKCS#8 device keys and one data key each were seen: the capture works.
    expect(keysA.filter((k) => k.length === 32)).toHaveLength(1);
    expect(keysA.filter((k) => k.length > 32)).toHaveLength(2);
    expect(keysB).toHaveLength(3);

    const space = await a.createSpace({ name: "Clinic" });
    await b.join(await a.invite(space, "https://app.example/"));
    const stopA = a.sync({ transports: [relayTransport(relay.url)] });
    const stopB = b.sync({ transports: [relayTransport(relay.url)] });

    const privateId = await a.notes.insert({ title: INDEXED, secret: CANARY, body: `x ${CANARY_TEXT} y` });
    const sharedId = await a.notes.insert(
      { title: "Shared", secret: `${CANARY} shared`, body: CANARY_TEXT },
      { space },
    );
    await a.notes.update(sharedId, (d) => void (d.body = `${CANARY_TEXT} and more ${CANARY_TEXT}`));
    await waitFor(
      b.notes.live(),
      (rows) => rows.some((r) => r.id === sharedId && String(r.body).startsWith(`${CANARY_TEXT} and more`)),
      30_000,
      "b to receive the shared note",
    );

    // A space with members too: its membership log, people's names and member keys are stored as well.
    const managed = await a.createSpace({ name: "Managed" });
    const toB = await a.invite(managed, { role: "writer", me: `Dr. ${NAME}` });
    await relayAcknowledged(a, managed.id);
    await b.join(toB, { name: `Nurse ${NAME}`, relay: relay.url });
    const managedId = await a.notes.insert(
      { title: "M", secret: CANARY, body: CANARY_TEXT },
      { space: managed },
    );
    await waitFor(
      b.notes.live(),
      (rows) => rows.some((r) => r.id === managedId),
      30_000,
      "b to receive the managed note",
    );
    expect((await firstOf<MembersView>(b.members(managed))).members.map((m) => m.name).sort()).toEqual([
      `Dr. ${NAME}`,
      `Nurse ${NAME}`,
    ]);

    const secretsA = await secretsOf(a, keysA);
    const secretsB = await secretsOf(b, keysB);
    stopA();
    stopB();
    await a.lock();
    await b.lock();
    expect(a.lockState.get()).toBe("locked");

    const foundA = await scanIndexedDb(nameA, secretsA);
    const foundB = await scanIndexedDb(nameB, secretsB);
    expect(foundA).toEqual([]);
    expect(foundB).toEqual([]);
    // Indexed fields stay in clear, as documented: IndexedDB must read them to index them.
    const clear = await scanIndexedDb(nameA, { strings: [INDEXED], bytes: [] });
    expect(clear.map((f) => f.store)).toEqual(["notes"]);

    // While locked, nothing reads: typed.
    expect(() => a.notes.get(privateId)).toThrow(Locked);
    await expect(a.unlock("wrong pin")).rejects.toThrow(WrongPassphrase);
    expect(a.lockState.get()).toBe("locked");

    // Unlocked, everything is there, and sync resumes (b's edit reaches a).
    await a.unlock("pin-a-2468");
    await b.unlock("pin-b-1357");
    expect(await a.notes.get(privateId)).toMatchObject({ title: INDEXED, secret: CANARY });
    const stopA2 = a.sync({ transports: [relayTransport(relay.url)] });
    const stopB2 = b.sync({ transports: [relayTransport(relay.url)] });
    await b.notes.update(sharedId, (d) => void (d.body += " from b"));
    await waitFor(
      a.notes.live(),
      (rows) => rows.some((r) => r.id === sharedId && String(r.body).endsWith(" from b")),
      30_000,
      "a to receive b's edit after unlocking",
    );
    stopA2();
    stopB2();
    await a.close();
    await b.close();

    // Closed (as after a reload): still nothing, and a reopen needs the passphrase.
    expect(await scanIndexedDb(nameA, secretsA)).toEqual([]);
    await expect(openDatabase({ name: nameA, collections })).rejects.toThrow(Locked);
    await expect(openDatabase({ name: nameA, collections, lock: { passphrase: "nope" } })).rejects.toThrow(
      WrongPassphrase,
    );
    const again = await openDatabase({ name: nameA, collections, lock: { passphrase: "pin-a-2468" } });
    expect((await again.notes.get(sharedId))?.body).toBe(`${CANARY_TEXT} and more ${CANARY_TEXT} from b`);
    await again.close();
  }, 90_000);

  it("the same scan of an unlocked database finds the canary everywhere it is stored (the scan works)", async () => {
    const name = fresh("plain");
    const db = await openDatabase({ name, collections });
    const id = await db.notes.insert({ title: "t", secret: CANARY, body: CANARY_TEXT });
    await db.notes.update(id, (d) => void (d.body = `${d.body} edited`));
    await db.close();
    const found = await scanIndexedDb(name, { strings: [CANARY, CANARY_TEXT], bytes: [] });
    const stores = new Set(found.map((f) => f.store));
    // The row in clear, the Automerge document (loaded), the commit log's changes (decoded).
    expect([...stores].sort()).toEqual(expect.arrayContaining(["_commits", "_docs", "notes"]));
    expect(found.some((f) => f.where.endsWith("(Automerge)"))).toBe(true);
    // And the device keys, stored as CryptoKey objects (their raw material is in the browser's files).
    expect(found.filter((f) => f.what === "a CryptoKey").map((f) => f.store)).toContain("_meta");
  });

  it("measures what the lock costs per update (logged, not asserted)", async () => {
    const perUpdate = async (lock?: { passphrase: string }): Promise<number> => {
      const db = await openDatabase({ name: fresh("cost"), collections, ...(lock && { lock }) });
      const id = await db.notes.insert({ title: "t", secret: "s", body: "" });
      const rounds = 100;
      const t0 = performance.now();
      for (let i = 0; i < rounds; i++) await db.notes.update(id, (d) => void (d.body += "x"));
      const ms = (performance.now() - t0) / rounds;
      await db.close();
      return ms;
    };
    // Interleaved, best of two each: the machine is shared, so one run alone says little.
    const runs: [number, number][] = [];
    for (let i = 0; i < 2; i++) runs.push([await perUpdate(), await perUpdate({ passphrase: "cost" })]);
    const plain = Math.min(...runs.map((r) => r[0]));
    const locked = Math.min(...runs.map((r) => r[1]));
    console.log(
      `at-rest lock cost: ${plain.toFixed(2)} ms per update without lock, ${locked.toFixed(2)} ms with (fake-indexeddb, Node)`,
    );
    expect(locked).toBeGreaterThan(0);
  });
});
