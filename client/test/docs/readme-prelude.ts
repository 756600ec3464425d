/**
 * What the README's code blocks assume without showing, as a global script beside them (see
 * `checkSnippets`). Each name here is something the README's text says exists at that point: the
 * database of "Opening a database", the record `id` of "Records", the space `north` of "Transactions",
 * another device's database, and functions an app writes itself. Anything else a snippet uses must be
 * defined or imported by the snippet.
 */
export const README_PRELUDE = `
interface ReadmePatient {
  name: string;
  ward: string;
  tags: string[];
  notes: string;
  visits: number;
}
type ReadmeDatabase = import("@shoal/client").DatabaseFromDeclarations<{
  patients: import("@shoal/client").TypedDeclaration<
    ReadmePatient,
    { indexes: "id, name, ward, [ward+name], *tags"; text: ["notes"]; counters: ["visits"] }
  >;
  visits: "id, patientId, date";
}>;

/** The database opened in "Opening a database". */
declare const db: ReadmeDatabase;
/** The same database on another device. */
declare const otherDb: ReadmeDatabase;
/** The record inserted in "Records". */
declare const id: import("@shoal/client").RecordId;
/** The space created in "Transactions". */
declare const north: import("@shoal/client").Space;

/** The app's own functions. */
declare function render(rows: readonly object[]): void;
declare function show(value: unknown): void;
declare function saveInParts(collection: string, id: string, value: object): Promise<void>;
`;
