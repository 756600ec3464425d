import { Dexie, type DBCore, type Middleware } from "dexie";
import { SchemaError } from "../errors.ts";
import type { CollectionSpec } from "./collection-spec.ts";

/**
 * Shoal's own tables, beside one rows table per collection. Their names start with `_`, which no
 * collection name may.
 * - `_docs`: each record's Automerge binary and heads, its collection and space, and whether it is deleted.
 * - `_commits`: the commit log; `pos` is this replica's causal order, `records` indexes history by record.
 * - `_vectors`: per (space, device) the highest contiguous sequence held; a local commit takes the next.
 * - `_spaces`: spaces this device belongs to, with their 32-byte keys.
 * - `_meta`: small key/value facts (device id, private space).
 * - `_pending`: remote commits received before what they depend on.
 * - `_sealed`: commits as sealed for the wire (as received, or as sealed here), to forward byte-identical.
 * - `_acks`: per (space, device) the highest sequence the relay acknowledged as durably stored.
 * - `_members`: each space's membership operations (`MemberRow`), verified, by op id.
 * - `_quarantine`: authentic remote commits that could not be applied, with why (`QuarantineRow`); their
 *   sequence slots count as held. `creations` and `checksums` find the commits that depend on them.
 * - `_erased`: record ids erased for good (`ErasedRow`): nothing of them is stored again.
 */
export const INTERNAL_TABLES: Readonly<Record<string, string>> = {
  _docs: "id, collection, space",
  _commits: "++pos, &id, [space+device+seq], *records",
  _vectors: "[space+device], space",
  _spaces: "id",
  _meta: "key",
  _pending: "id, space",
  _sealed: "[space+device+seq]",
  _acks: "[space+device], space",
  _quarantine: "id, space, [space+device+seq], *creations, *checksums",
  _members: "[space+id], space",
  _erased: "id, space",
};

interface TableShape {
  primKey: string;
  indexes: Map<string, { multi: boolean; compound: boolean }>;
}

/**
 * Opens the Dexie database for these collections, upgrading it in place when the app declares a new
 * collection or index (IndexedDB builds new indexes over existing rows itself), and refusing with a
 * `SchemaError` what would lose data or silently change meaning: a collection or index that disappeared,
 * or an index whose kind changed.
 *
 * Dexie needs a version number before it opens, so an existing database is first opened without one
 * (Dexie's dynamic mode) to read its actual tables and version. `middleware` (the at-rest lock's) is
 * registered before the database opens, so no read or write passes around it.
 */
export async function openDexie(
  name: string,
  specs: readonly CollectionSpec[],
  middleware?: Middleware<DBCore>,
): Promise<Dexie> {
  const desired: Record<string, string> = { ...INTERNAL_TABLES };
  for (const s of specs) desired[s.name] = s.dexieSchema;
  for (let attempt = 0; ; attempt++) {
    const version = await targetVersion(name, desired);
    const db = new Dexie(name, {
      // Chromium 121+ defaults to relaxed durability: a commit reported saved could vanish on power loss.
      chromeTransactionDurability: "strict",
    });
    db.version(version).stores(desired);
    if (middleware) db.use(middleware);
    try {
      await db.open();
      return db;
    } catch (e) {
      db.close();
      // Another tab upgraded between our look and our open: look again.
      if (attempt < 2 && e instanceof Error && e.name === "VersionError") continue;
      throw e;
    }
  }
}

async function targetVersion(name: string, desired: Record<string, string>): Promise<number> {
  if (!(await Dexie.exists(name))) return 1;
  const probe = new Dexie(name);
  let verno: number;
  const existing = new Map<string, TableShape>();
  try {
    await probe.open();
    verno = probe.verno;
    for (const t of probe.tables) {
      const indexes = new Map<string, { multi: boolean; compound: boolean }>();
      for (const ix of t.schema.indexes) indexes.set(ix.name, { multi: !!ix.multi, compound: !!ix.compound });
      existing.set(t.name, { primKey: primKeyOf(t.schema.primKey), indexes });
    }
  } finally {
    probe.close();
  }
  let upgrade = false;
  for (const [table, shape] of existing) {
    const want = desired[table];
    if (want === undefined) {
      if (table.startsWith("_")) continue;
      throw new SchemaError(
        `Collection "${table}" holds data on this device but is no longer declared. Removing a collection is not supported; keep declaring it.`,
      );
    }
    const wanted = shapeOf(want);
    if (wanted.primKey !== shape.primKey) {
      throw new SchemaError(
        `Table "${table}" changed its primary key from "${shape.primKey}" to "${wanted.primKey}".`,
      );
    }
    for (const [ix, kind] of shape.indexes) {
      const w = wanted.indexes.get(ix);
      if (!w) {
        throw new SchemaError(
          `Index "${ix}" of "${table}" exists on this device but is no longer declared. Removing an index is not supported.`,
        );
      }
      if (w.multi !== kind.multi || w.compound !== kind.compound) {
        throw new SchemaError(`Index "${ix}" of "${table}" changed kind (multi-entry or compound).`);
      }
    }
    if (wanted.indexes.size > shape.indexes.size) upgrade = true;
  }
  for (const table of Object.keys(desired)) if (!existing.has(table)) upgrade = true;
  return upgrade ? Math.floor(verno) + 1 : verno;
}

function primKeyOf(pk: { keyPath?: string | string[] | null; auto?: boolean }): string {
  const path = Array.isArray(pk.keyPath) ? `[${pk.keyPath.join("+")}]` : (pk.keyPath ?? "");
  return pk.auto ? `++${path}` : path;
}

function shapeOf(schema: string): TableShape {
  const parts = schema.split(",").map((s) => s.trim());
  const indexes = new Map<string, { multi: boolean; compound: boolean }>();
  for (const src of parts.slice(1)) {
    const multi = src.startsWith("*");
    const body = src.replace(/^[*&]/, "");
    indexes.set(body, { multi, compound: body.startsWith("[") });
  }
  const pk = parts[0]!.replace(/^&/, "");
  return { primKey: pk, indexes };
}
