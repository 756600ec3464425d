import type { CollectionDeclaration, TypedDeclaration, UnknownIndexFields } from "./collection-types.ts";

type IndexStringOf<D> = D extends string
  ? D
  : D extends { readonly indexes: infer S extends string }
    ? S
    : string;

/** Makes a declaration whose index string names a field `T` lacks fail to compile, naming the field. */
type IndexFieldsOf<D, T> = [UnknownIndexFields<IndexStringOf<D>, T>] extends [never]
  ? unknown
  : D extends string
    ? { readonly "unknown field in indexes": UnknownIndexFields<IndexStringOf<D>, T> }
    : { readonly indexes: { readonly "unknown field": UnknownIndexFields<IndexStringOf<D>, T> } };

/**
 * Declares a collection of rows of type `T` (without `id`), for `openDatabase` to type it with no
 * type parameter: `where` and `orderBy` then take exactly the declared indexes, `sortBy` the fields of
 * `T`, and an `update` draft holds the declared counters as `Counter`s. The compiler checks the
 * declaration itself: index fields must be fields of `T`, `text` paths string fields, `counters`
 * number fields. At run time it returns the declaration unchanged.
 *
 * @example
 * const db = await openDatabase({
 *   name: "clinic",
 *   collections: {
 *     patients: collection<Patient>()({ indexes: "id, name, ward, *tags", text: ["notes"], counters: ["visits"] }),
 *   },
 * });
 * await db.patients.update(id, (p) => p.visits.increment());
 */
export function collection<T extends object>() {
  return <const D extends CollectionDeclaration<T>>(
    declaration: D & IndexFieldsOf<D, T>,
  ): TypedDeclaration<T, D> => declaration as TypedDeclaration<T, D>;
}
