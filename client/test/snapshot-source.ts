import { openDatabase } from "../src/index.ts";

/** The record type of the snapshot unit tests' spaces. */
export type SourcePatient = { name: string; ward: string; notes: string };

const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };

/** Opens the database `name` (fake-indexeddb in unit tests) with the `patients` collection. */
export function openPatients(name: string) {
  return openDatabase<{ patients: SourcePatient }>({ name, collections });
}

/**
 * A space of `records` records in commits of 150, the first `edited` of them edited (so they have
 * documents): what a snapshot of a small clinic holds. Opens the database with `open`.
 */
export async function snapshotSource(
  open: () => ReturnType<typeof openPatients>,
  records: number,
  edited: number,
) {
  const a = await open();
  const space = await a.createSpace({ name: "S" });
  const ids: string[] = [];
  for (let from = 0; from < records; from += 150)
    await a.transact(async (tx) => {
      for (let i = from; i < Math.min(records, from + 150); i++)
        ids.push(await tx.patients.insert({ name: `P${i}`, ward: `W${i % 3}`, notes: "" }, { space }));
    });
  await a.transact(async (tx) => {
    for (const id of ids.slice(0, edited)) await tx.patients.update(id, (p) => void (p.ward = "X"));
  });
  return { a, space, ids };
}
