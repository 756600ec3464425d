import { SchemaError } from "../errors.ts";
import type { CollectionDeclaration, RetentionRule } from "./collection-types.ts";

export type { CollectionDeclaration } from "./collection-types.ts";

/** One secondary index, parsed from Dexie syntax. */
export interface IndexSpec {
  /** As written, e.g. `[ward+name]`, `*tags`, `name`. Also Dexie's index name. */
  readonly src: string;
  /** The index name Dexie and IndexedDB use (`[ward+name]`, `tags`, `name`). */
  readonly name: string;
  readonly multi: boolean;
  readonly compound: boolean;
}

/** A collection declaration, parsed and validated. */
export interface CollectionSpec {
  readonly name: string;
  readonly indexes: readonly IndexSpec[];
  readonly text: ReadonlySet<string>;
  readonly counters: ReadonlySet<string>;
  /** The Dexie `stores()` string for the rows table. */
  readonly dexieSchema: string;
  /** Whether `open(id)` records a view event (`auditViews` of the declaration). */
  readonly auditViews?: boolean;
  /** When records are erased for age (`retention` of the declaration), checked. */
  readonly retention?: RetentionRule;
}

/**
 * The internal collection view events go to (`auditViews`): every database declares it, so every
 * device accepts and syncs view events; its name starts with `_`, which no app collection can.
 */
export const AUDIT_VIEWS_COLLECTION = "_auditViews";

/** The spec of the view events' collection: `{ collection, record }` rows, no index. */
export const AUDIT_VIEWS_SPEC: CollectionSpec = {
  name: AUDIT_VIEWS_COLLECTION,
  indexes: [],
  text: new Set(),
  counters: new Set(),
  dexieSchema: "id",
};

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * Parses an app's collection declaration. Refuses what a replicated database cannot honour: unique
 * indexes (`&`) could be violated by two devices inserting offline, and auto-increment keys (`++`)
 * collide across devices.
 */
export function parseCollectionSpec(name: string, decl: CollectionDeclaration): CollectionSpec {
  if (!NAME_RE.test(name)) {
    throw new SchemaError(
      `Collection name "${name}" is not allowed: use letters, digits and _, starting with a letter.`,
    );
  }
  const indexes = typeof decl === "string" ? decl : decl.indexes;
  if (typeof indexes !== "string") throw new SchemaError(`Collection "${name}" has no index string.`);
  const parts = indexes
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts[0] === "id") parts.shift();
  const seen = new Set<string>();
  const specs: IndexSpec[] = [];
  for (const src of parts) specs.push(parseIndex(name, src, seen));
  const text = new Set(typeof decl === "string" ? [] : (decl.text ?? []));
  const counters = new Set(typeof decl === "string" ? [] : (decl.counters ?? []));
  for (const f of [...text, ...counters]) {
    if (!FIELD_RE.test(f)) throw new SchemaError(`Collection "${name}": "${f}" is not a field path.`);
    if (f === "id" || f.startsWith("$")) throw new SchemaError(`Collection "${name}": "${f}" is reserved.`);
    if (text.has(f) && counters.has(f)) {
      throw new SchemaError(`Collection "${name}": "${f}" cannot be both text and a counter.`);
    }
  }
  return {
    name,
    indexes: specs,
    text,
    counters,
    dexieSchema: ["id", ...specs.map((s) => s.src)].join(", "),
    ...(typeof decl !== "string" && decl.auditViews === true && { auditViews: true }),
    ...(typeof decl !== "string" &&
      decl.retention !== undefined && { retention: checkRetention(name, decl.retention, specs) }),
  };
}

/** A retention rule the sweep can honour: an indexed plain field and whole, non-negative durations. */
function checkRetention(
  collection: string,
  rule: RetentionRule,
  indexes: readonly IndexSpec[],
): RetentionRule {
  const field = (rule as { field?: unknown })?.field;
  const index = indexes.find((i) => i.name === field);
  if (typeof field !== "string" || !index || index.multi || index.compound) {
    throw new SchemaError(
      `Collection "${collection}": retention needs a field with a plain index of its own (got "${String(field)}").`,
    );
  }
  for (const k of ["years", "months", "days", "graceDays"] as const) {
    const v = rule[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 1000 * 366)) {
      throw new SchemaError(
        `Collection "${collection}": retention ${k} must be a whole number of 0 or more.`,
      );
    }
  }
  return { ...rule };
}

function parseIndex(collection: string, src: string, seen: Set<string>): IndexSpec {
  if (src.startsWith("&") || src.startsWith("++")) {
    throw new SchemaError(
      `Collection "${collection}": index "${src}" is unique or auto-increment, which devices editing offline cannot guarantee.`,
    );
  }
  const multi = src.startsWith("*");
  const body = multi ? src.slice(1) : src;
  const compound = body.startsWith("[") && body.endsWith("]");
  const fields = compound ? body.slice(1, -1).split("+") : [body];
  for (const f of fields) {
    if (!FIELD_RE.test(f)) throw new SchemaError(`Collection "${collection}": bad index "${src}".`);
  }
  if (multi && compound)
    throw new SchemaError(`Collection "${collection}": "${src}" cannot be both * and [ ].`);
  const name = compound ? body : fields[0]!;
  if (seen.has(name)) throw new SchemaError(`Collection "${collection}": index "${name}" is declared twice.`);
  seen.add(name);
  return { src, name, multi, compound };
}
