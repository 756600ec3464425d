import type { Page } from "@playwright/test";

/** Every value of every object store of every IndexedDB database of the page's origin, as text. */
export function readAllIndexedDb(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const text = (v: unknown): string =>
      JSON.stringify(v, (_k, x) =>
        x instanceof Uint8Array || x instanceof ArrayBuffer ? new TextDecoder("latin1").decode(x) : x,
      ) ?? "";
    const parts: string[] = [];
    for (const info of await indexedDB.databases()) {
      if (!info.name) continue;
      const db = await new Promise<IDBDatabase>((ok, ko) => {
        const open = indexedDB.open(info.name!);
        open.onsuccess = () => ok(open.result);
        open.onerror = () => ko(open.error);
      });
      for (const store of [...db.objectStoreNames]) {
        const rows = await new Promise<unknown[]>((ok, ko) => {
          const r = db.transaction(store).objectStore(store).getAll();
          r.onsuccess = () => ok(r.result);
          r.onerror = () => ko(r.error);
        });
        parts.push(`${info.name}/${store}: ${rows.map(text).join("\n")}`);
      }
      db.close();
    }
    return parts.join("\n");
  });
}
