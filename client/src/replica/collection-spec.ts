import { SchemaError } from "../errors.ts";
import type { CollectionDeclaration, RetentionRule } from "./collection-types.ts";
import { CONFLICTED_FIELD } from "./conflict-values.ts";

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

/** The bound of a bounded counter: its value never goes below `min`. */
export interface BoundedRule {
  readonly min: number;
}

/** A collection declaration, parsed and validated. */
export interface CollectionSpec {
  readonly name: string;
  readonly indexes: readonly IndexSpec[];
  readonly text: ReadonlySet<string>;
  readonly counters: ReadonlySet<string>;
  /** Bounded counters (`counters: { doses: { min: 0 } }`): top-level field -> its bound (escrow.ts). */
  readonly bounded?: ReadonlyMap<string, BoundedRule>;
  /** Field paths declared `conflicts: "inbox"`: their concurrent values are listed, not hidden. */
  readonly inbox: ReadonlySet<string>;
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
  inbox: new Set(),
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
  const { counters, bounded } = parseCounters(name, typeof decl === "string" ? undefined : decl.counters);
  for (const f of [...text, ...counters, ...bounded.keys()]) {
    if (!FIELD_RE.test(f)) throw new SchemaError(`Collection "${name}": "${f}" is not a field path.`);
    if (f === "id" || f.startsWith("$")) throw new SchemaError(`Collection "${name}": "${f}" is reserved.`);
    if (text.has(f) && (counters.has(f) || bounded.has(f))) {
      throw new SchemaError(`Collection "${name}": "${f}" cannot be both text and a counter.`);
    }
  }
  const inbox = parseConflicts(
    name,
    typeof decl === "string" ? undefined : decl.conflicts,
    text,
    new Set([...counters, ...bounded.keys()]),
  );
  return {
    name,
    indexes: specs,
    text,
    counters,
    inbox,
    ...(bounded.size > 0 && { bounded }),
    // Inbox collections index the conflicted flag, so `db.conflicts()` reads only conflicted rows.
    dexieSchema: ["id", ...specs.map((s) => s.src), ...(inbox.size > 0 ? [CONFLICTED_FIELD] : [])].join(", "),
    ...(typeof decl !== "string" && decl.auditViews === true && { auditViews: true }),
    ...(typeof decl !== "string" &&
      decl.retention !== undefined && { retention: checkRetention(name, decl.retention, specs) }),
  };
}

/**
 * The counters of a declaration: the list form (unbounded counters), or the object form, where `true`
 * or `{}` is an unbounded counter and `{ min }` a bounded one (a top-level field, a finite integer bound).
 */
function parseCounters(
  name: string,
  decl: unknown,
): { counters: Set<string>; bounded: Map<string, BoundedRule> } {
  const counters = new Set<string>();
  const bounded = new Map<string, BoundedRule>();
  if (decl === undefined) return { counters, bounded };
  if (Array.isArray(decl)) {
    for (const f of decl) counters.add(f as string);
    return { counters, bounded };
  }
  if (decl === null || typeof decl !== "object") {
    throw new SchemaError(
      `Collection "${name}": counters must be a list of field paths or an object of rules.`,
    );
  }
  for (const [f, rule] of Object.entries(decl)) {
    if (rule === undefined) continue;
    if (rule === true || (isPlainObject(rule) && Object.keys(rule).length === 0)) {
      counters.add(f);
      continue;
    }
    if (!isPlainObject(rule) || Object.keys(rule).some((k) => k !== "min")) {
      throw new SchemaError(
        `Collection "${name}": the rule of counter "${f}" must be true or { min } (a max is not supported).`,
      );
    }
    const min = (rule as { min?: unknown }).min;
    if (!Number.isSafeInteger(min)) {
      throw new SchemaError(`Collection "${name}": the min of counter "${f}" must be a whole number.`);
    }
    // Escrow rows live under the record's `$escrow` key, one per top-level field.
    if (f.includes(".")) {
      throw new SchemaError(`Collection "${name}": bounded counter "${f}" must be a top-level field.`);
    }
    bounded.set(f, { min: min as number });
  }
  return { counters, bounded };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The conflict rules of a declaration: the inbox fields, checked like `text` and `counters`. */
function parseConflicts(
  name: string,
  conflicts: unknown,
  text: ReadonlySet<string>,
  counters: ReadonlySet<string>,
): ReadonlySet<string> {
  if (conflicts === undefined) return new Set();
  if (conflicts === null || typeof conflicts !== "object" || Array.isArray(conflicts)) {
    throw new SchemaError(`Collection "${name}": conflicts must map field paths to "inbox".`);
  }
  const inbox = new Set<string>();
  for (const [f, rule] of Object.entries(conflicts)) {
    if (rule === undefined) continue;
    if (rule !== "inbox")
      throw new SchemaError(`Collection "${name}": conflict rule of "${f}" must be "inbox".`);
    if (!FIELD_RE.test(f)) throw new SchemaError(`Collection "${name}": "${f}" is not a field path.`);
    if (f === "id" || f.startsWith("$")) throw new SchemaError(`Collection "${name}": "${f}" is reserved.`);
    // Text and counters merge every concurrent edit: they never hold rival values to choose from.
    if (text.has(f) || counters.has(f)) {
      throw new SchemaError(
        `Collection "${name}": "${f}" is text or a counter, which merge and never conflict.`,
      );
    }
    inbox.add(f);
  }
  return inbox;
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
