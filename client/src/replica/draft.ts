import * as A from "@automerge/automerge";
import { ValidationError } from "../errors.ts";
import type { CollectionSpec } from "./collection-spec.ts";
import { checkContent } from "./content-check.ts";

/**
 * Converts an app value into what Automerge should store, following the collection's declaration:
 * strings at declared text paths become collaborative text, every other string an immutable string
 * (one winner per field on conflict), and numbers at declared counter paths counters. As in JSON, an
 * object field holding `undefined` is left out; `undefined` elsewhere (in a list) is refused.
 * Automerge 3 would otherwise make every string text, one op per character: about 3x the cost.
 */
export function toAutomerge(value: unknown, path: string, spec: CollectionSpec): unknown {
  // Bounded before the recursive conversion below, so no nesting can overflow the stack here.
  const tooBig = checkContent(value);
  if (tooBig) throw new ValidationError(`Field "${path}" cannot sync: it holds ${tooBig}.`);
  return convert(value, path, spec);
}

function convert(value: unknown, path: string, spec: CollectionSpec): unknown {
  if (value === undefined) {
    throw new ValidationError(`Field "${path}" is undefined; omit it or use null.`);
  }
  if (typeof value === "string") return spec.text.has(path) ? value : new A.ImmutableString(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new ValidationError(`Field "${path}" is not a finite number.`);
    return spec.counters.has(path) ? new A.Counter(value) : value;
  }
  if (typeof value === "bigint" || typeof value === "function" || typeof value === "symbol") {
    throw new ValidationError(`Field "${path}" holds a ${typeof value}, which cannot be stored.`);
  }
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date || value instanceof Uint8Array || value instanceof A.Counter) return value;
  if (value instanceof A.ImmutableString) return value;
  if (Array.isArray(value)) return value.map((v, i) => convert(v, `${path}.${i}`, spec));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new ValidationError(
      `Field "${path}" is a ${proto?.constructor?.name ?? "class instance"}; store plain objects.`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[k] = convert(v, path ? `${path}.${k}` : k, spec);
  }
  return out;
}

/** A bounded counter changes only by `take` and `add`, which check and move rights (escrow.ts). */
function refuseBounded(spec: CollectionSpec, key: string): void {
  if (spec.bounded?.has(key)) {
    throw new ValidationError(
      `Field "${key}" is a bounded counter: change it with take() or add(), never by assignment.`,
    );
  }
}

const ARRAY_ADDERS = new Set(["push", "unshift", "splice", "fill"]);

/** The key under which a draft object hands out its text splicer (see `spliceText`). */
const TEXT_SPLICE = Symbol("shoal.textSplice");
type TextSplicer = (key: string, at: number, remove: number, insert: string) => void;

/**
 * Edits a declared text field of an update draft in place: at `at` (UTF-16 code units, as in a
 * textarea's `selectionStart`), removes `remove` characters and inserts `insert`. Unlike assigning the
 * whole string, which diffs against whatever the record holds when the update runs, a splice says
 * exactly where the edit goes, so an editor can place it against the text its user saw. A field that is
 * absent or `null` becomes text on an insert at 0. Throws `ValidationError` for an undeclared field, a
 * field holding something other than text, or a range outside the text.
 *
 * @example
 * await db.patients.update(id, (p) => spliceText(p, "notes", 0, 0, "Seen today. "));
 */
export function spliceText(draft: object, path: string, at: number, remove: number, insert = ""): void {
  const keys = path.split(".");
  let owner: unknown = draft;
  for (const key of keys.slice(0, -1))
    owner = owner !== null && typeof owner === "object" ? Reflect.get(owner, key) : undefined;
  const splicer = owner !== null && typeof owner === "object" ? Reflect.get(owner, TEXT_SPLICE) : undefined;
  if (typeof splicer !== "function") {
    throw new ValidationError(
      `spliceText needs the draft of an update and a field path; "${path}" is not one.`,
    );
  }
  (splicer as TextSplicer)(keys[keys.length - 1]!, at, remove, insert);
}

/**
 * Wraps the Automerge change proxy handed to an app's `update` function so the app writes plain
 * JavaScript: reads give strings (not ImmutableString objects); assigning a string to a declared text
 * field becomes a character diff (`A.updateText`), so two people replacing a note concurrently keep
 * both insertions; other writes go through `toAutomerge`.
 */
export function makeDraft<T extends object>(root: A.Doc<T>, spec: CollectionSpec): T {
  return wrap(root as object, [], root, spec) as T;
}

function wrap(real: object, path: (string | number)[], root: unknown, spec: CollectionSpec): unknown {
  const dotted = (key: string | number) => [...path, key].join(".");
  const isArray = Array.isArray(real);
  // The proxy's target is a stand-in, not Automerge's own proxy: the engine checks proxy invariants
  // against the target's own property descriptors, and Automerge's list proxy throws when asked for the
  // descriptor of a method name such as "push".
  const standIn: object = isArray ? [] : {};
  const spliceField: TextSplicer = (key, at, remove, insert) => {
    const p = dotted(key);
    if (!spec.text.has(p))
      throw new ValidationError(`Field "${p}" is not text: declare it in the collection's \`text\`.`);
    const current = Reflect.get(real, key);
    // Text stored as a plain string (written before the field was declared text) becomes text here.
    const text = current instanceof A.ImmutableString ? current.val : (current ?? "");
    if (typeof text !== "string") throw new ValidationError(`Field "${p}" holds a ${typeof text}, not text.`);
    if (![at, remove].every(Number.isSafeInteger) || at < 0 || remove < 0 || at + remove > text.length) {
      throw new ValidationError(
        `Cannot splice [${at}, ${at + remove}) of field "${p}": it has ${text.length} characters.`,
      );
    }
    if (typeof current === "string") {
      A.splice(root as A.Doc<unknown>, [...path, isArray ? Number(key) : key], at, remove, insert);
    } else {
      Reflect.set(real, key, toAutomerge(text.slice(0, at) + insert + text.slice(at + remove), p, spec));
    }
  };
  return new Proxy(standIn, {
    get(_t, key) {
      if (key === TEXT_SPLICE) return spliceField;
      const v = Reflect.get(real, key);
      if (typeof key === "symbol") return v;
      if (isArray && ARRAY_ADDERS.has(key) && typeof v === "function") {
        return (...args: unknown[]) => {
          // splice(start, deleteCount, ...items) and fill(value, start, end): only items are values.
          const converted =
            key === "splice"
              ? [args[0], args[1], ...args.slice(2).map((a, i) => toAutomerge(a, dotted(i), spec))]
              : key === "fill"
                ? [toAutomerge(args[0], dotted(0), spec), ...args.slice(1)]
                : args.map((a, i) => toAutomerge(a, dotted(i), spec));
          return (v as (...a: unknown[]) => unknown).apply(real, converted);
        };
      }
      if (v instanceof A.ImmutableString) return v.val;
      if (
        v !== null &&
        typeof v === "object" &&
        !(v instanceof Date) &&
        !(v instanceof Uint8Array) &&
        !(v instanceof A.Counter)
      ) {
        return wrap(v, [...path, isArray ? Number(key) : key], root, spec);
      }
      return v;
    },
    set(_t, key, value) {
      if (typeof key === "symbol") return false;
      const p = dotted(key);
      if (path.length === 0 && (key === "id" || key.startsWith("$"))) {
        throw new ValidationError(`Field "${key}" is reserved.`);
      }
      if (path.length === 0) refuseBounded(spec, key);
      // As with insert (and JSON), a field set to undefined is left out: here, removed.
      if (value === undefined && !isArray) return Reflect.deleteProperty(real, key);
      if (typeof value === "string" && spec.text.has(p) && typeof Reflect.get(real, key) === "string") {
        A.updateText(root as A.Doc<unknown>, [...path, key], value);
        return true;
      }
      return Reflect.set(real, key, toAutomerge(value, p, spec));
    },
    deleteProperty(_t, key) {
      if (path.length === 0 && typeof key === "string") refuseBounded(spec, key);
      return Reflect.deleteProperty(real, key);
    },
    has(_t, key) {
      return Reflect.has(real, key);
    },
    ownKeys(t) {
      const keys = Reflect.ownKeys(real);
      if (isArray && !keys.includes("length")) keys.push("length");
      if (isArray) (t as unknown[]).length = (real as unknown[]).length;
      return keys;
    },
    getOwnPropertyDescriptor(t, key) {
      if (isArray && key === "length") {
        (t as unknown[]).length = (real as unknown[]).length;
        return Reflect.getOwnPropertyDescriptor(t, key);
      }
      if (!Reflect.has(real, key)) return undefined;
      return {
        value: (this.get as (t: object, k: string | symbol) => unknown)(t, key),
        writable: true,
        enumerable: true,
        configurable: true,
      };
    },
  });
}
