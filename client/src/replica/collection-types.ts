// Type-level only: what the compiler derives from a collection's row type and from its declaration, so
// that a misspelt index, sort field, text or counter path and an async update function fail to compile.
// Nothing here exists at run time; the run-time checks stay in collection-spec.ts and the writers.
import type { Counter } from "./counter.ts";

/** Rows of a collection whose type the app did not give: any JSON-like object. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRow = Record<string, any>;

/** Values a path does not descend into: primitives (branded ids too), arrays, binary, dates, functions. */
type Leaf =
  | string
  | number
  | boolean
  | bigint
  | symbol
  | null
  | undefined
  | Date
  | Uint8Array
  | ArrayBuffer
  | readonly unknown[]
  | ((...args: never[]) => unknown);

// Paths stop 4 levels down, so that recursive row types cannot make the compiler loop.
type Down = [never, 0, 1, 2, 3];

/**
 * Dotted paths of the fields of `T` whose value fits `V` (`"name"`, `"address.city"`), nested objects
 * up to 4 levels; arrays are not entered. For a row type with an index signature (no type given): `string`.
 */
export type PathTo<T, V, D extends number = 4> = [D] extends [never]
  ? never
  : string extends keyof T
    ? string
    : T extends object
      ? {
          [K in keyof T & string]-?:
            | (NonNullable<T[K]> extends V ? K : never)
            | (NonNullable<T[K]> extends Leaf ? never : `${K}.${PathTo<NonNullable<T[K]>, V, Down[D]>}`);
        }[keyof T & string]
      : never;

/** Every field path of `T` (what `sortBy` takes). */
export type FieldPath<T> = PathTo<T, unknown>;
/** The paths of `T`'s string fields: what `text` may name. */
export type TextPath<T> = PathTo<T, string>;
/** The paths of `T`'s number fields: what `counters` may name. */
export type CounterPath<T> = PathTo<T, number>;

/**
 * What a counter field is, in the object form of `counters`: `true` (or `{}`) an unbounded counter that
 * merges by sum; `{ min }` a bounded counter whose value never goes below `min` on any device, whatever
 * devices do offline (escrow: see README "Bounded counters"). Bounded counters are top-level fields.
 */
export type CounterRule = true | { readonly min?: number };

/**
 * How concurrent values of a plain field merge. `"inbox"`: every concurrent value is kept, the row lists
 * them under `$conflicts` and `db.conflicts()` shows them until someone resolves the field.
 */
export type ConflictRule = "inbox";

/**
 * The index names a collection of `T` could declare, when only the row type is known: `id`, any field
 * path, `*path` of an array, and compound indexes whose first field is a field of `T` (`[ward+name]`).
 * Only the first field of a compound is checked: every pair of fields would make a union of n² names,
 * which for rows of a few hundred fields costs the compiler minutes. Declared indexes (see
 * `IndexNames`) are checked exactly.
 */
export type IndexName<T> =
  "id" | FieldPath<T> | `*${PathTo<T, readonly unknown[]>}` | `[${FieldPath<T>}+${string}]`;

type Space = " " | "\n" | "\t" | "\r";
type Trim<S extends string> = S extends `${Space}${infer R}`
  ? Trim<R>
  : S extends `${infer R}${Space}`
    ? Trim<R>
    : S;
type SplitComma<S extends string> = S extends `${infer H},${infer R}` ? Trim<H> | SplitComma<R> : Trim<S>;
// A multi-entry index is queried by its field name; Shoal also accepts it as written (`*tags`).
type NameOfPart<P extends string> = P extends "" ? never : P extends `*${infer F}` ? F | P : P;

/**
 * The index names an index string declares: `IndexNames<"id, name, [ward+name], *tags">` is
 * `"id" | "name" | "[ward+name]" | "tags" | "*tags"`. A string that is not a literal gives `string`.
 */
export type IndexNames<S extends string> = string extends S ? string : "id" | NameOfPart<SplitComma<S>>;

/** The fields a declared index names: `[ward+name]` names `ward` and `name`, `*tags` names `tags`. */
type FieldsOfIndex<N extends string> = N extends `[${infer Inner}]`
  ? SplitPlus<Inner>
  : N extends `*${infer F}`
    ? F
    : N;
type SplitPlus<S extends string> = S extends `${infer H}+${infer R}` ? Trim<H> | SplitPlus<R> : Trim<S>;

/** The fields of an index string that are not fields of `T` (never when all are). */
export type UnknownIndexFields<S extends string, T> = string extends S
  ? never
  : Exclude<FieldsOfIndex<Exclude<IndexNames<S>, "id">>, FieldPath<T>>;

/**
 * How an app declares a collection: Dexie's index syntax, either as the whole spec (shorthand) or
 * with the fields that hold collaborative text and counters. With a row type `T`, `text` may only
 * name string fields of `T` and `counters` only number fields.
 *
 * @example
 * const patients: CollectionDeclaration<Patient> = {
 *   indexes: "id, name, ward, [ward+name], *tags",
 *   text: ["notes"],          // concurrent edits to the note merge character by character
 *   counters: ["visitCount"], // concurrent increments add up
 *   conflicts: { dose: "inbox" }, // concurrent doses are listed by db.conflicts() until resolved
 * };
 * const visits: CollectionDeclaration = "id, patientId, date";
 */
export type CollectionDeclaration<T extends object = AnyRow> =
  | string
  | {
      /** Dexie index syntax; the primary key is always `id` (added when omitted). */
      readonly indexes: string;
      /** Dotted paths of fields holding collaborative text. Every other string is a plain value. */
      readonly text?: readonly TextPath<T>[];
      /**
       * Fields that are counters: a list of dotted paths (merge by sum), or an object naming each one's
       * rule, `{ visits: true, doses: { min: 0 } }` (see `CounterRule`: `{ min }` makes it bounded).
       */
      readonly counters?: readonly CounterPath<T>[] | { readonly [P in CounterPath<T>]?: CounterRule };
      /**
       * Per field path, how concurrent values merge: `"inbox"` lists them as a conflict to resolve
       * (`db.conflicts()`, `resolve`); fields not named keep one deterministic winner.
       */
      readonly conflicts?: { readonly [P in FieldPath<T>]?: ConflictRule };
      /**
       * Record who opens a record: `collection.open(id)` then writes a view event (synced, sealed,
       * in the record's space) that audit exports carry (`db.exportAudit`). Default false.
       */
      readonly auditViews?: boolean;
      /**
       * Erase records once they are past a date (see README "Retention"): `{ field, years?, months?,
       * days? }` keeps a record that long after the date in `field` (an ISO date string or ms since the
       * epoch; `field` must be a plain index); with no duration, `field` holds the expiry itself.
       */
      readonly retention?: RetentionRule;
    };

/** A collection's retention rule (`retention` of its declaration). */
export interface RetentionRule {
  /** An indexed field holding a date: an ISO 8601 string or ms since the epoch. */
  readonly field: string;
  readonly years?: number;
  readonly months?: number;
  readonly days?: number;
  /**
   * How far this device's clock may run ahead without erasing early (default 1 day): a record is
   * erased only once it is past its date by this much more.
   */
  readonly graceDays?: number;
}

declare const rowType: unique symbol;

/**
 * A declaration that carries its row type, made by `collection<T>()`: `openDatabase` then needs no
 * type parameter. The row type exists for the compiler only.
 */
export type TypedDeclaration<T extends object, D> = D & { readonly [rowType]?: T };

/** What the compiler knows about one collection: its row type, index names and counter paths. */
export interface CollectionTypes {
  readonly row: object;
  readonly indexes: string;
  readonly counters: string;
}

/** Per collection name, what the compiler knows (see `CollectionTypes`). */
export type SchemaTypes = Record<string, CollectionTypes>;

/** Index names known from a row type alone (see `IndexName`). */
export type RowSchema<T extends object> = { row: T; indexes: IndexName<T>; counters: never };

// Only literal paths become typed fields: a declaration held in a `string[]` variable types nothing.
type Literal<P> = P extends string ? (string extends P ? never : P) : never;
type Head<P extends string> = P extends `${infer H}.${string}` ? H : P;
type Tail<P extends string, H extends string> = P extends `${H}.${infer R}` ? R : never;
/** `{ notes: string }` from `"notes"`, `{ address: { note: string } }` from `"address.note"`, open to other fields. */
type FieldsAt<P extends string, V> = Open<{
  [H in Head<P>]: H extends P ? V : FieldsAt<Tail<P, H>, V>;
}>;
// A homomorphic copy keeps both the known fields (with their types) and `AnyRow`'s index signature;
// a plain intersection would read every known field as `any`.
type Open<X> = { [K in keyof (X & AnyRow)]: (X & AnyRow)[K] };

/**
 * The row type a declaration without a row type implies: any fields, of which the `text` paths are
 * strings and the `counters` paths numbers.
 */
export type InferredRow<Text extends string, Counters extends string> = [Text | Counters] extends [never]
  ? AnyRow
  : Open<FieldsAt<Text, string> & FieldsAt<Counters, number>>;

type TextOf<D> = D extends { readonly text?: readonly (infer P)[] } ? Literal<P> : never;
type RuleKeys<C, Bounded extends boolean> = {
  [K in keyof C & string]: (NonNullable<C[K]> extends { readonly min: number } ? true : false) extends Bounded
    ? K
    : never;
}[keyof C & string];
// Unbounded counters are `Counter`s in drafts; bounded ones are numbers, changed by `take` and `add` only.
type CountersOf<D> = D extends { readonly counters?: infer C }
  ? C extends readonly (infer P)[]
    ? Literal<P>
    : Literal<RuleKeys<NonNullable<C>, false>>
  : never;
type BoundedOf<D> = D extends { readonly counters?: infer C }
  ? C extends readonly unknown[]
    ? never
    : Literal<RuleKeys<NonNullable<C>, true>>
  : never;
type IndexesOf<D> = D extends string
  ? D
  : D extends { readonly indexes: infer S extends string }
    ? S
    : string;
type RowOfDeclaration<D> = D extends { readonly [rowType]?: infer T }
  ? unknown extends T
    ? InferredRow<TextOf<D>, CountersOf<D> | BoundedOf<D>>
    : T extends object
      ? T
      : AnyRow
  : InferredRow<TextOf<D>, CountersOf<D> | BoundedOf<D>>;

/** What the compiler learns from one collection declaration. */
export type DeclarationTypes<D> = {
  row: RowOfDeclaration<D>;
  indexes: IndexNames<IndexesOf<D>>;
  /** The counter paths; a bounded counter's field name carries a `!` (read-only in drafts). */
  counters: CountersOf<D> | `${BoundedOf<D>}!`;
};

/** The bounded counters among a collection's counter names (those marked `!`). */
type BoundedIn<C extends string> = C extends `${infer K}!` ? K : never;

/** The row type of a collection: what the app declared, else `AnyRow`. */
export type RowType<X> = unknown extends X ? AnyRow : X extends object ? X : AnyRow;

/**
 * A row as an `update` function sees it: counter fields are `Counter`s (`increment`, `decrement`),
 * bounded counters are read-only numbers (changed by `take` and `add` only; an assignment is refused
 * at run time too), everything else as in the row.
 */
export type Draft<T, C extends string> = [C] extends [never]
  ? T
  : {
      [K in keyof T as K extends BoundedIn<C> ? never : K]: K extends C
        ? Counter
        : K extends Head<C>
          ? Draft<T[K], Tail<C, K & string>>
          : T[K];
    } & { readonly [K in keyof T as K extends BoundedIn<C> ? K : never]: T[K] };

/**
 * An update function's result type, refused when it is a promise: a draft is only valid during the
 * synchronous call, so `update(id, async (d) => ...)` must not compile.
 */
export type Synchronous<R> = R extends PromiseLike<unknown> ? "update functions must be synchronous" : R;
