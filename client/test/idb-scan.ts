import * as A from "@automerge/automerge";

/** What `scanIndexedDb` looks for: strings (as text, UTF-8 and UTF-16 bytes) and raw byte strings. */
export interface Secrets {
  readonly strings: readonly string[];
  readonly bytes: readonly { label: string; bytes: Uint8Array }[];
}

/** Where a secret was found: the object store and a short path inside the value. */
export interface Finding {
  readonly store: string;
  readonly what: string;
  readonly where: string;
}

/**
 * Reads EVERY object store of IndexedDB database `name` with the raw IndexedDB API (no Dexie, no Shoal),
 * keys and values, and reports each place a secret shows: in a string, in the bytes of a Uint8Array or
 * ArrayBuffer (the secret strings as UTF-8 and UTF-16LE), and inside any byte array that Automerge can
 * load as a document or decode as a change (Automerge may deflate columns, hiding text from a byte
 * search).
 *
 * @example
 * expect(await scanIndexedDb("clinic", { strings: ["canary"], bytes: [] })).toEqual([]);
 */
export async function scanIndexedDb(name: string, secrets: Secrets): Promise<Finding[]> {
  const idb = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(name);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const found: Finding[] = [];
  try {
    for (const store of Array.from(idb.objectStoreNames)) {
      const tx = idb.transaction(store, "readonly");
      const os = tx.objectStore(store);
      const [values, keys] = await Promise.all([request(os.getAll()), request(os.getAllKeys())]);
      (keys as unknown[]).forEach((k, i) =>
        walk(k, `key[${i}]`, (what, where) => found.push({ store, what, where }), secrets),
      );
      (values as unknown[]).forEach((v, i) =>
        walk(v, `[${i}]`, (what, where) => found.push({ store, what, where }), secrets),
      );
    }
  } finally {
    idb.close();
  }
  return found;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
function utf16(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    out[i * 2] = s.charCodeAt(i) & 0xff;
    out[i * 2 + 1] = s.charCodeAt(i) >> 8;
  }
  return out;
}

/** True if `needle` occurs in `hay`. */
export function containsBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0 || needle.length > hay.length) return false;
  outer: for (let i = 0; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * Every place a secret shows in one stored value (a store's key or value), as `scanIndexedDb` searches:
 * for values read elsewhere (the e2e spec reads them in Chromium and searches them here).
 */
export function findInValue(store: string, value: unknown, path: string, secrets: Secrets): Finding[] {
  const found: Finding[] = [];
  walk(value, path, (what, where) => found.push({ store, what, where }), secrets);
  return found;
}

function walk(v: unknown, path: string, hit: (what: string, where: string) => void, secrets: Secrets): void {
  if (typeof v === "string") {
    for (const s of secrets.strings) if (v.includes(s)) hit(s, path);
    return;
  }
  // A stored CryptoKey is key material in the browser's files whatever the page can read of it.
  if (typeof CryptoKey !== "undefined" && v instanceof CryptoKey) return hit("a CryptoKey", path);
  if (v instanceof ArrayBuffer) return walk(new Uint8Array(v), path, hit, secrets);
  if (ArrayBuffer.isView(v)) {
    const b = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (const s of secrets.strings)
      if (containsBytes(b, utf8(s)) || containsBytes(b, utf16(s))) hit(s, `${path} (bytes)`);
    for (const k of secrets.bytes) if (containsBytes(b, k.bytes)) hit(k.label, `${path} (bytes)`);
    for (const text of automergeTexts(b))
      for (const s of secrets.strings) if (text.includes(s)) hit(s, `${path} (Automerge)`);
    return;
  }
  if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${path}[${i}]`, hit, secrets));
  if (v && typeof v === "object")
    for (const [k, x] of Object.entries(v)) {
      for (const s of secrets.strings) if (k.includes(s)) hit(s, `${path} (a key)`);
      walk(x, `${path}.${k}`, hit, secrets);
    }
}

/** What Automerge reads out of `b`, as text: a loaded document, or a decoded change. */
function automergeTexts(b: Uint8Array): string[] {
  const out: string[] = [];
  try {
    out.push(JSON.stringify(A.toJS(A.load(b))));
  } catch {
    // not a document
  }
  try {
    out.push(JSON.stringify(A.decodeChange(b), (_k, x: unknown) => (typeof x === "bigint" ? String(x) : x)));
  } catch {
    // not a change
  }
  return out;
}
