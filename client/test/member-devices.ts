// Shared by the membership tests (issue 13): devices on fake-indexeddb closed after each test, the
// admin's membership log as the relay's invitation endpoint would answer it, bundles carried by hand.
import { afterEach } from "vitest";
import { openDatabase, type Database, type Space } from "../src/index.ts";
import type { MembershipOp } from "../src/members/membership-op.ts";
import type { MemberRow } from "../src/replica/stored-rows.ts";
import { joinByInvitation } from "../src/spaces/join-by-invitation.ts";
import { readMembership } from "../src/spaces/membership-log.ts";

/** The record type of the membership tests. */
export type MemberPatient = { name: string; notes: string };
/** A database of the membership tests. */
export type MemberDb = Database<{ patients: MemberPatient }>;
const collections = { patients: { indexes: "id, name", text: ["notes"] } };

let n = 0;
const open: MemberDb[] = [];
afterEach(async () => {
  for (const db of open.splice(0).reverse()) await db.close();
});

/** A fresh device (closed after the test). */
export async function memberDevice(label: string): Promise<MemberDb> {
  const db = await openDatabase<{ patients: MemberPatient }>({
    name: `members-${label}-${process.pid}-${n++}`,
    collections,
    persist: false,
  });
  open.push(db);
  return db;
}

/** `db`'s membership log, as the relay's invitation endpoint answers it (a `LogSource`). */
export function logOf(db: MemberDb): () => Promise<MembershipOp[]> {
  return async () =>
    (await db.replica.dexie.table<MemberRow>("_members").toArray()).map((r) => JSON.parse(r.op));
}

/** Sends what `to` lacks of `from`'s commits of `space` as a bundle file. */
export async function carry(from: MemberDb, to: MemberDb, space: Space) {
  return to.importBundle(await from.exportBundle({ space, since: await to.vector([space.id]) }));
}

/** Every row of every table of `db` as text, byte arrays decoded, so sealed bytes are searched too. */
export async function everything(db: MemberDb): Promise<string> {
  const parts: string[] = [];
  for (const t of db.replica.dexie.tables)
    for (const row of await t.toArray())
      parts.push(JSON.stringify(row, (_k, v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v)));
  return parts.join("\n");
}

/** The first value an observable delivers. */
export function firstValue<T>(obs: {
  subscribe(o: { next: (v: T) => void }): { unsubscribe(): void };
}): Promise<T> {
  return new Promise((resolve) => {
    const sub = obs.subscribe({
      next: (v) => {
        queueMicrotask(() => sub.unsubscribe());
        resolve(v);
      },
    });
  });
}

/**
 * An admin A and a writer B who joined by invitation, B having written "Before removal", both holding
 * everything (by bundle); `bPerson` is B's person in the log.
 */
export async function adminAndWriter(): Promise<{ a: MemberDb; b: MemberDb; space: Space; bPerson: string }> {
  const [a, b] = await Promise.all([memberDevice("admin"), memberDevice("writer")]);
  const space = await a.createSpace({ name: "North Clinic" });
  const invite = await a.invite(space, { role: "writer", me: "Admin" });
  await joinByInvitation(b.replica, invite, logOf(a), "Nurse B");
  await b.patients.insert({ name: "Before removal", notes: "" }, { space });
  await carry(b, a, space);
  await carry(a, b, space);
  const bPerson = (await readMembership(a.replica.dexie, space.id))!.deviceOwner.get(b.deviceId)!;
  return { a, b, space, bPerson };
}
