import type {
  DBCore,
  DBCoreCursor,
  DBCoreMutateRequest,
  DBCoreTable,
  DBCoreTableSchema,
  Middleware,
} from "dexie";
import { DecryptError, Locked, ValidationError } from "../errors.ts";
import type { DataKey } from "./data-key.ts";
import { decodeValue, encodeValue } from "./value-codec.ts";

/** The stored field that holds a value's encrypted fields. `$` starts no field a record may have. */
export const SEALED_FIELD = "$atRest";
/** The one value a locked database keeps in clear: its lock record, `_meta` key `lock`. */
export const LOCK_META_KEY = "lock";

/**
 * The Dexie DBCore middleware of a locked database: below every other middleware (closest to
 * IndexedDB), it encrypts each stored object's fields under the data key, except its primary key and
 * indexed fields, which IndexedDB must read to index them; reads decrypt them back, so the layers above
 * (Dexie's live queries and hooks, Shoal itself) see plain values and do not change. Each value is
 * bound to its table and primary key, so a value moved to another record or table no longer opens.
 *
 * While the key is not held (locked), every read or write throws `Locked`, except counting and the
 * lock record (`_meta` `lock`), which opening needs before there is a key.
 *
 * An indexed path `a.b` keeps the whole top-level field `a` in clear.
 *
 * @example
 * dexie.use(atRestMiddleware(key)); // before dexie.open()
 */
export function atRestMiddleware(key: DataKey): Middleware<DBCore> {
  return {
    stack: "dbcore",
    name: "ShoalAtRest",
    // Below Dexie's own middlewares (the lowest is -1): they all see plain values.
    level: -10,
    create: (down) => ({ ...down, table: (name) => sealedTable(down.table(name), key) }),
  };
}

function clearFieldsOf(schema: DBCoreTableSchema): Set<string> {
  const fields = new Set<string>();
  const add = (path: null | string | string[]): void => {
    if (path === null) return;
    for (const p of Array.isArray(path) ? path : [path]) fields.add(p.split(".")[0]!);
  };
  add(schema.primaryKey.keyPath);
  for (const ix of schema.indexes) add(ix.keyPath);
  return fields;
}

function sealedTable(table: DBCoreTable, key: DataKey): DBCoreTable {
  const clear = clearFieldsOf(table.schema);
  const pk = table.schema.primaryKey;
  const isMeta = table.name === "_meta";
  // An auto-incremented key is not known when the value is written: bind to the table only.
  const contextOf = (primaryKey: unknown): string =>
    pk.autoIncrement || pk.extractKey === null
      ? table.name
      : `${table.name}\u0000${JSON.stringify(primaryKey)}`;
  const isLockRecord = (value: unknown): boolean =>
    isMeta && (value as { key?: unknown } | undefined)?.key === LOCK_META_KEY;

  const seal = (value: unknown): unknown => {
    if (isLockRecord(value)) return value;
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new ValidationError(`A locked database stores objects only (table ${table.name}).`);
    const kept: Record<string, unknown> = {};
    const hidden: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === SEALED_FIELD) throw new ValidationError(`"${SEALED_FIELD}" is a reserved field.`);
      if (clear.has(k)) kept[k] = v;
      else hidden[k] = v;
    }
    kept[SEALED_FIELD] = key.seal(encodeValue(hidden), contextOf(pk.extractKey?.(value)));
    return kept;
  };

  const open = (stored: unknown): unknown => {
    if (stored === undefined || isLockRecord(stored)) return stored;
    const s = stored as Record<string, unknown>;
    const sealed = s?.[SEALED_FIELD];
    if (!(sealed instanceof Uint8Array))
      throw new DecryptError(`A value of ${table.name} is stored in clear in a locked database.`);
    const hidden = decodeValue(key.open(sealed, contextOf(pk.extractKey?.(s)))) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s)) if (k !== SEALED_FIELD) out[k] = v;
    return Object.assign(out, hidden);
  };

  const needKey = (): void => {
    if (!key.held) throw new Locked();
  };

  return {
    ...table,
    mutate(req: DBCoreMutateRequest) {
      if (req.type === "add" || req.type === "put") {
        const lockOnly = isMeta && req.values.every(isLockRecord);
        if (!lockOnly) needKey();
        return table.mutate({ ...req, values: req.values.map(seal) } as DBCoreMutateRequest);
      }
      needKey();
      return table.mutate(req);
    },
    async get(req) {
      if (!(isMeta && req.key === LOCK_META_KEY)) needKey();
      return open(await table.get(req));
    },
    async getMany(req) {
      needKey();
      return (await table.getMany(req)).map(open);
    },
    async query(req) {
      needKey();
      const res = await table.query(req);
      return req.values ? { ...res, result: res.result.map(open) } : res;
    },
    async openCursor(req) {
      needKey();
      const cursor = await table.openCursor(req);
      return cursor && req.values !== false ? openingCursor(cursor, open) : cursor;
    },
  };
}

/**
 * A cursor whose `value` is decrypted (once per position). Every member is forwarded explicitly: the
 * cursor below is a native `IDBCursor`, whose getters throw "Illegal invocation" on any other `this`
 * (so `Object.create(cursor)` would not do), and whose methods Dexie reassigns as it goes.
 */
function openingCursor(cursor: DBCoreCursor, open: (v: unknown) => unknown): DBCoreCursor {
  let seen: unknown = undefined;
  let opened: unknown = undefined;
  const wrapped: DBCoreCursor = {
    get trans() {
      return cursor.trans;
    },
    get key() {
      return cursor.key as unknown;
    },
    get primaryKey() {
      return cursor.primaryKey as unknown;
    },
    get done() {
      return cursor.done;
    },
    get value() {
      const v = cursor.value as unknown;
      if (v !== seen) {
        seen = v;
        opened = open(v);
      }
      return opened;
    },
    continue: (k?: unknown) => cursor.continue(k),
    continuePrimaryKey: (k: unknown, p: unknown) => cursor.continuePrimaryKey(k, p),
    advance: (n: number) => cursor.advance(n),
    start: (onNext: () => void) => cursor.start(onNext),
    stop: (v?: unknown) => cursor.stop(v),
    next: () => cursor.next().then(() => wrapped),
    fail: (e: Error) => cursor.fail(e),
  };
  return wrapped;
}
