import * as A from "@automerge/automerge";
import { InsufficientRights, NotFound, ValidationError } from "../errors.ts";
import {
  emptyRow,
  ESCROW_FIELD,
  ESCROW_KEY,
  readEscrow,
  rightsOf,
  totalRights,
  unmetWant,
  type EscrowSummary,
} from "./escrow.ts";
import { Mutex } from "./mutex.ts";
import type { Replica } from "./replica.ts";

/**
 * The key under which a transaction's collection hands out `Transaction.editEscrow` (set by the
 * database; the app's `tx` never shows it).
 */
export const ESCROW_EDIT = Symbol("shoal.escrowEdit");

/** What `ESCROW_EDIT` holds: changes a record's escrow in the running transaction. */
export type EscrowEdit = (
  id: string,
  field: string,
  fn: (doc: Record<string, unknown>) => void,
) => Promise<void>;

/** The slice of the database the escrow operations need. */
export interface EscrowHost {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  transact<R>(fn: (tx: any) => Promise<R> | R): Promise<R>;
  readonly replica: Replica;
}

/** A bounded counter as this device sees it (`collection.rights`). */
export interface Rights {
  /** The counter's value (never below its `min`). */
  readonly value: number;
  /** What this device may take now, offline or not. */
  readonly held: number;
  /** What all devices together may take: `value - min`. */
  readonly total: number;
  /** What this device asked the others for and has not received yet. */
  readonly wanted: number;
}

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

const tabLocks = new WeakMap<Replica, Mutex>();

/**
 * Runs `fn` while no other escrow write of this device runs: one at a time in this tab (a mutex), and
 * across the tabs of this browser (the Web Lock `shoal-escrow-<database>`, where the Web Locks API
 * exists; in Node a database has one handle per device). Each write reads the document as stored by
 * the writes before it, so two tabs never spend the same rights.
 */
export async function withEscrowLock<R>(replica: Replica, fn: () => Promise<R>): Promise<R> {
  let mutex = tabLocks.get(replica);
  if (!mutex) tabLocks.set(replica, (mutex = new Mutex()));
  const release = await mutex.acquire();
  try {
    const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
    if (typeof locks?.request === "function")
      return await locks.request(`shoal-escrow-${replica.dexie.name}`, fn);
    return await fn();
  } finally {
    release();
  }
}

function checkField(replica: Replica, collection: string, field: string): void {
  if (!replica.specs.get(collection)?.bounded?.has(field)) {
    throw new ValidationError(
      `"${field}" is not a bounded counter of "${collection}": declare it in counters with a min.`,
    );
  }
}

function checkAmount(n: number): void {
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new ValidationError(`An amount must be a whole number above 0 (got ${n}).`);
}

/** Runs one escrow edit of a record in its own commit, with the escrow lock held. */
function edit(
  host: EscrowHost,
  collection: string,
  id: string,
  field: string,
  fn: (doc: Record<string, unknown>) => void,
): Promise<void> {
  return withEscrowLock(host.replica, async () => {
    // This tab's queued writes first: a document they still pin is read as this tab left it, without
    // what another tab of this device stored meanwhile (loadForEdit merges stored writes otherwise).
    await host.replica.drain();
    return host.transact(async (tx) => {
      const c = tx.collection(collection) as { [ESCROW_EDIT]: EscrowEdit };
      await c[ESCROW_EDIT](id, field, fn);
    });
  });
}

/** The device's own row of a field in a document being changed, made on its first write. */
function ownRow(
  doc: Record<string, unknown>,
  field: string,
  device: string,
): Record<string, A.Counter & { increment(n: number): void }> {
  const rows = (doc[ESCROW_KEY] as Record<string, Record<string, unknown>>)[field]!.rows as Record<
    string,
    unknown
  >;
  if (rows[device] === undefined) rows[device] = emptyRow();
  return rows[device] as Record<string, A.Counter & { increment(n: number): void }>;
}

function stateOf(doc: Record<string, unknown>, id: string, field: string) {
  const st = readEscrow(doc, field);
  if (!st) {
    throw new ValidationError(
      `Record ${id} has no escrow for "${field}": it was created before "${field}" was declared bounded.`,
    );
  }
  return st;
}

/** Raises this device's request so that `shortfall` more rights are asked for (never lowers it). */
function ask(
  doc: Record<string, unknown>,
  field: string,
  device: string,
  shortfall: number,
  unmet: number,
): void {
  if (shortfall > unmet) ownRow(doc, field, device).want!.increment(shortfall - unmet);
}

/**
 * Withdraws this device's unmet request after a take that succeeded or an add: it is served, and a
 * stale request would keep it from granting to others (a device that asks grants nothing).
 */
function withdraw(doc: Record<string, unknown>, field: string, device: string, unmet: number): void {
  if (unmet > 0) ownRow(doc, field, device).waived!.increment(unmet);
}

/**
 * One escrow edit of this device's own row: checks the field and the amount, then runs `fn` on the
 * record as stored (see `edit`) with its escrow state and this device's id.
 */
function editOwn(
  host: EscrowHost,
  collection: string,
  id: string,
  field: string,
  amount: number,
  fn: (doc: Record<string, unknown>, st: ReturnType<typeof stateOf>, device: string) => void,
): Promise<void> {
  checkField(host.replica, collection, field);
  checkAmount(amount);
  const device = host.replica.device;
  return edit(host, collection, id, field, (doc) => fn(doc, stateOf(doc, id, field), device));
}

/**
 * Takes `n` from a bounded counter, within the rights this device holds: checked against the record
 * as stored, with the escrow lock held, before anything is written. Beyond them it throws
 * `InsufficientRights` at once, after recording a request for the shortfall (its own small commit),
 * which a device holding rights answers when both are online.
 */
export async function take(
  host: EscrowHost,
  collection: string,
  id: string,
  field: string,
  n: number,
): Promise<void> {
  let refused: InsufficientRights | undefined;
  await editOwn(host, collection, id, field, n, (doc, st, device) => {
    const held = rightsOf(st, device);
    if (held >= n) {
      ownRow(doc, field, device).dec!.increment(n);
      withdraw(doc, field, device, unmetWant(st, device));
      return;
    }
    refused = new InsufficientRights(field, n, held, totalRights(st));
    ask(doc, field, device, n - held, unmetWant(st, device));
  });
  if (refused) throw refused;
}

/**
 * Adds `n` to a bounded counter: this device's rights grow by `n` (anyone may add), and a request of
 * its own is withdrawn.
 */
export function add(
  host: EscrowHost,
  collection: string,
  id: string,
  field: string,
  n: number,
): Promise<void> {
  return editOwn(host, collection, id, field, n, (doc, st, device) => {
    ownRow(doc, field, device).inc!.increment(n);
    withdraw(doc, field, device, unmetWant(st, device));
  });
}

/**
 * Asks the other devices for rights so that this device holds `amount` in all (nothing if it already
 * does). The request syncs like any write; a device that holds spare rights grants them.
 */
export function requestRights(
  host: EscrowHost,
  collection: string,
  id: string,
  field: string,
  amount: number,
): Promise<void> {
  return editOwn(host, collection, id, field, amount, (doc, st, device) =>
    ask(doc, field, device, amount - rightsOf(st, device), unmetWant(st, device)),
  );
}

/** A bounded counter as this device sees it, from the record's row (see `Rights`). */
export async function rights(
  host: EscrowHost,
  collection: string,
  id: string,
  field: string,
): Promise<Rights> {
  checkField(host.replica, collection, field);
  host.replica.assertOpen();
  const row = (await host.replica.dexie.table(collection).get(id)) as Record<string, unknown> | undefined;
  if (!row) throw new NotFound(`No record ${id} in "${collection}".`);
  return rightsOfRow(row, field, host.replica.device);
}

/** `Rights` from a materialized row (as a live query gives it), for `device`. */
export function rightsOfRow(row: object, field: string, device: string): Rights {
  const r = row as Record<string, unknown>;
  const s = (r[ESCROW_FIELD] as EscrowSummary | undefined)?.[field];
  const value = typeof r[field] === "number" ? (r[field] as number) : 0;
  if (!s) return { value, held: 0, total: 0, wanted: 0 };
  return { value, held: s.rights[device] ?? 0, total: value - s.min, wanted: s.wants[device] ?? 0 };
}

/**
 * Grants rights asked for by other devices on one record, from this device's own: to each device
 * with an unmet request (in device id order) the lesser of the request and what this device still
 * holds. A device that is itself asking grants nothing, so two short devices never swap rights back
 * and forth; each grant lowers a request for good, so grants stop. Returns whether it granted.
 */
export async function grantAsked(host: EscrowHost, collection: string, id: string): Promise<boolean> {
  const spec = host.replica.specs.get(collection);
  const row = (await host.replica.dexie.table(collection).get(id)) as Record<string, unknown> | undefined;
  if (!spec?.bounded || !row) return false;
  const device = host.replica.device;
  let granted = false;
  for (const field of spec.bounded.keys()) {
    const s = (row[ESCROW_FIELD] as EscrowSummary | undefined)?.[field];
    // Decided from the row first, so the common case (nobody asks) writes nothing.
    if (!s || (s.rights[device] ?? 0) <= 0 || (s.wants[device] ?? 0) > 0) continue;
    if (!Object.keys(s.wants).some((d) => d !== device)) continue;
    await edit(host, collection, id, field, (doc) => {
      const st = readEscrow(doc, field);
      if (!st || unmetWant(st, device) > 0) return;
      let held = rightsOf(st, device);
      for (const to of [...st.rows.keys()].sort()) {
        if (to === device || held <= 0) continue;
        const give = Math.min(held, unmetWant(st, to));
        if (give <= 0) continue;
        const given = ownRow(doc, field, device).given as unknown as Record<
          string,
          A.Counter & { increment(n: number): void }
        >;
        if (given[to] === undefined)
          given[to] = new A.Counter(give) as A.Counter & { increment(n: number): void };
        else given[to]!.increment(give);
        held -= give;
        granted = true;
      }
    });
  }
  return granted;
}
