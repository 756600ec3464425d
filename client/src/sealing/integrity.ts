import type { Dexie } from "dexie";
import { ShoalError } from "../errors.ts";
import { ValueStore } from "../live/value-store.ts";
import type { DeviceId, SpaceId } from "../types.ts";

/**
 * Where a sealed commit (or a snapshot) reached this replica from: the relay, a WebRTC peer, another
 * tab (a commit sealed on this device from its own log, as every tab of a browser shares one store),
 * a bundle file, or a relay snapshot.
 */
export type IntegritySource = "relay" | "peer" | "tab" | "bundle" | "snapshot";

/**
 * What was wrong:
 * - `equivocation`: two different commits for one (device, seq); the first is kept, the other refused.
 * - `broken-chain`: a commit kept aside (its predecessor was missing when it arrived) does not follow
 *   the predecessor that arrived later; it is dropped and fetched again.
 * - `bad-at-source`: a commit that does not open, served with the same bytes twice by one source: not
 *   damage on the way but a bad commit at its source, given up on (its device's later commits wait).
 * - `forged-snapshot`: a snapshot that contradicts the sealed commits; it was discarded and the log
 *   replayed. `device` is the publisher the snapshot names (a claim: any member could have written it).
 */
export type IntegrityKind = "equivocation" | "broken-chain" | "bad-at-source" | "forged-snapshot";

/** One version of a commit as seen here: its SHA-256 (hex, of the sealed bytes) and where it came from. */
export interface IntegrityWitness {
  readonly hash: string;
  readonly source: IntegritySource;
}

/** One integrity finding, as `db.integrity` lists it. */
export interface IntegrityEntry {
  readonly kind: IntegrityKind;
  readonly space: SpaceId;
  /** The device whose commit is in question (for `forged-snapshot`, the snapshot's claimed publisher). */
  readonly device: DeviceId;
  readonly seq: number;
  /**
   * The version this replica kept (absent when it kept none). For `broken-chain`, the predecessor the
   * dropped commit does not follow; for `forged-snapshot`, the relay's commit that contradicts it.
   */
  readonly kept?: IntegrityWitness;
  /** The version it refused or dropped (for `forged-snapshot`, the snapshot's; empty hash if none). */
  readonly refused: IntegrityWitness;
  /** When this replica found it (ms since 1970). */
  readonly at: number;
  /** What happened, for a person. */
  readonly message: string;
}

/** `db.integrity`: every finding since the database was opened, oldest first. */
export interface IntegrityReport {
  readonly entries: readonly IntegrityEntry[];
}

/** Findings kept at most (the oldest are dropped beyond): a hostile peer cannot grow it without bound. */
export const MAX_INTEGRITY_ENTRIES = 1000;

/** A finding reported as an error (in `status.lastError` and to sync hooks), once per finding. */
export class IntegrityError extends ShoalError {
  readonly entry: IntegrityEntry;
  constructor(entry: IntegrityEntry) {
    super("IntegrityError", entry.message);
    this.entry = entry;
  }
}

/**
 * The integrity findings of one database: a watchable report plus listeners (the sync engine turns a
 * new finding into `lastError` and a flagged device in `db.status`). A finding already listed (same
 * kind, space, device, seq and refused bytes) is not listed again.
 */
export class IntegrityLog {
  readonly store = new ValueStore<IntegrityReport>({ entries: [] });
  readonly #seen = new Set<string>();
  readonly #listeners = new Set<(e: IntegrityEntry) => void>();

  /** Adds a finding; false if it was already listed. */
  report(entry: Omit<IntegrityEntry, "at"> & { at?: number }): boolean {
    const key = `${entry.kind}|${entry.space}|${entry.device}|${entry.seq}|${entry.refused.hash}`;
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    const full: IntegrityEntry = { ...entry, at: entry.at ?? Date.now() };
    const entries = [...this.store.get().entries, full];
    this.store.set({ entries: entries.slice(Math.max(0, entries.length - MAX_INTEGRITY_ENTRIES)) });
    for (const l of [...this.#listeners]) l(full);
    return true;
  }

  /** Calls `listener` for every new finding; returns the function that stops it. */
  listen(listener: (e: IntegrityEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

const logs = new WeakMap<Dexie, IntegrityLog>();

/** The integrity log of the database stored in `dexie` (one per open database, made on first use). */
export function integrityLogOf(dexie: Dexie): IntegrityLog {
  let log = logs.get(dexie);
  if (!log) {
    log = new IntegrityLog();
    logs.set(dexie, log);
  }
  return log;
}

/** The integrity source of what arrives over a transport of this kind. */
export function sourceOfTransport(kind: string): IntegritySource {
  if (kind === "webrtc") return "peer";
  if (kind === "broadcast-channel") return "tab";
  return "relay";
}
