// Erase, retention and restore in the convergence fuzzer (issue 16): seeded steps that erase a record
// (an admin, sometimes while the record is being edited on a device cut off from the network), insert
// records dated inside or past the collection's retention and sweep them (each device by its own,
// possibly skewed, clock), restore a record to an earlier version, or restore the whole space to an
// earlier commit; and the end-of-scenario checks that an erased record is gone from every replica.
// Membership mode only: an erase needs an admin of a space with a membership log.
import type { SimulatedNetwork } from "../../src/testing/simulated-network.ts";
import type { seededRandom } from "../../src/testing/seeded-random.ts";
import type { ErasedRow } from "../../src/replica/erased.ts";
import type { StoredCommit } from "../../src/replica/commit.ts";
import { roleOf } from "../../src/spaces/member-keys.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";
import type { CommitId, SpaceId } from "../../src/types.ts";
import type { Replica } from "./fuzz-settle.ts";
import { canaryNotes } from "./membership-invariant.ts";

/** What the erase and restore steps did in one scenario. */
export interface EraseStats {
  /** Erases an admin's own view accepted. */
  erases: number;
  /** Erases whose record was edited afterwards by a device that had not heard of the erase yet. */
  concurrentEdits: number;
  /** Such edits the editor's own view refused (it had heard of the erase already, or is no writer). */
  editsRefused: number;
  /** Single-record restores written. */
  restores: number;
  /** Space restores written. */
  spaceRestores: number;
  /** Steps a device's own (possibly stale) view refused: not an admin, not a writer, record gone. */
  refused: number;
  /** Records inserted with a retention date (`seen`), inside or past the rule. */
  retentionInserts: number;
  /** Retention sweeps run (`db.sweepRetention()`, by the sweeping device's own clock). */
  sweeps: number;
  /** Records the sweeps erased. */
  sweptErased: number;
  /** Expired records a sweep skipped because its device is no admin. */
  sweptNotPermitted: number;
  /** Dated records erased at the end, by a sweep step or by the sweep a device runs when it opens. */
  datedErased: number;
}

export const emptyEraseStats = (): EraseStats => ({
  erases: 0,
  concurrentEdits: 0,
  editsRefused: 0,
  restores: 0,
  spaceRestores: 0,
  refused: 0,
  retentionInserts: 0,
  sweeps: 0,
  sweptErased: 0,
  sweptNotPermitted: 0,
  datedErased: 0,
});

/** The fuzz collection's retention rule (`fuzz-driver.ts` declares it on `seen`). */
export const FUZZ_RETENTION = { field: "seen", days: 30 } as const;
const DAY = 86_400_000;

/** One erase the scenario made: the record, its canary (the plaintext to look for) and its admin. */
interface Erased {
  id: string;
  token: string | undefined;
  by: string;
}

interface Hooks {
  rnd: ReturnType<typeof seededRandom>;
  /**
   * The retention steps' own stream, drawn after every step of the main one: adding them left the
   * main stream, and so every earlier seed's erase and restore steps, as they were.
   */
  retentionRnd: ReturnType<typeof seededRandom>;
  space: SpaceId;
  net: SimulatedNetwork;
  replicas: () => Replica[];
  partitioned: () => void;
  /** Where to say what it did (the membership trail, printed with a divergence). */
  trail: string[];
  /** The scenario's seed (in the retention inserts' canaries). */
  seed: number;
}

/** Refusals a device's own view explains: counted, never a failure. */
function isRefusal(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "NotPermitted" || code === "NotFound" || code === "AccessDenied" || code === "ValidationError";
}

/** The membership-mode canary an insert put in the notes (`canaryNotes`), if the record has one. */
const tokenIn = (notes: string | undefined): string | undefined => /canary-[0-9]+-[0-9]+-r[0-9]+/.exec(notes ?? "")?.[0];

/**
 * The erase and restore steps of a membership scenario. Every choice comes from the scenario's seeded
 * stream, so a seed replays the same operations.
 */
export class EraseScenario {
  readonly stats = emptyEraseStats();
  readonly #h: Hooks;
  readonly #erased: Erased[] = [];
  /** Retention inserts: record id to its canary. */
  readonly #dated = new Map<string, string>();

  constructor(hooks: Hooks) {
    this.#h = hooks;
  }

  /**
   * One seeded step: an erase (1 in 2), a record restore (1 in 3) or a space restore (1 in 6); then,
   * from the retention stream, a retention insert (1 in 2) or sweep (1 in 4).
   */
  async step(): Promise<void> {
    const kind = this.#h.rnd.int(6);
    await this.#refusable(async () => {
      if (kind <= 2) await this.#erase();
      else if (kind <= 4) await this.#restore(false);
      else await this.#restore(true);
    });
    const retention = this.#h.retentionRnd.int(4);
    await this.#refusable(async () => {
      if (retention <= 1) await this.#insertDated();
      else if (retention === 2) await this.#sweep();
    });
  }

  async #refusable(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!isRefusal(e)) throw e;
      this.stats.refused++;
      this.#h.trail.push(`  refused: ${(e as Error).message}`);
    }
  }

  /**
   * A writer inserts a record dated (`seen`, by the true clock) from 90 days ago to now, so most are
   * past the 30-day rule at once, some never within the run, and devices with clocks months ahead
   * find the recent ones expired too: whichever device sweeps first decides, and everyone applies it.
   */
  async #insertDated(): Promise<void> {
    const rnd = this.#h.retentionRnd;
    const r = rnd.pick(this.#h.replicas());
    if (!r) return;
    const n = this.stats.retentionInserts;
    const token = `canary-${this.#h.seed}-${9000 + n}-${r.name}`;
    const seen = Date.now() - rnd.int(90) * DAY - rnd.int(DAY);
    const id = await r.db.patients.insert(
      { name: `R${n}`, ward: "R", notes: canaryNotes(token), visits: 0, kind: "patient", balance: 0, seen },
      { space: this.#h.space },
    );
    this.stats.retentionInserts++;
    this.#dated.set(id, token);
    this.#h.trail.push(`${r.name} inserts ${id.slice(-8)} seen ${Math.round((Date.now() - seen) / DAY)} days ago`);
  }

  /**
   * A device sweeps by its own clock: an admin erases what it finds expired, others only list it. Two
   * times in three an admin sweeps (as the one device that erases, in a clinic), else any device.
   */
  async #sweep(): Promise<void> {
    const rnd = this.#h.retentionRnd;
    const r = rnd.pick(rnd.next() < 2 / 3 ? await this.#admins() : this.#h.replicas());
    if (!r) return;
    const report = await r.db.sweepRetention();
    this.stats.sweeps++;
    this.stats.sweptErased += report.erased.length;
    this.stats.sweptNotPermitted += report.notPermitted.length;
    for (const { id } of report.erased) this.#erased.push({ id, token: this.#dated.get(id), by: r.name });
    this.#h.trail.push(
      `${r.name} sweeps (clock ${Math.round(r.clockOffset / DAY)} days off): erased ${report.erased.length}, not permitted ${report.notPermitted.length}`,
    );
  }

  async #admins(): Promise<Replica[]> {
    const out: Replica[] = [];
    for (const r of this.#h.replicas()) {
      const state = await readMembership(r.db.replica.dexie, this.#h.space);
      if (roleOf(state, r.db.deviceId)?.role === "admin") out.push(r);
    }
    return out;
  }

  async #erase(): Promise<void> {
    const { rnd, net } = this.#h;
    const admin = rnd.pick(await this.#admins());
    if (!admin) return;
    const ids = (await admin.db.patients.where("kind").equals("patient").ids()) as string[];
    if (ids.length === 0) return;
    const id = rnd.pick(ids);
    const token = tokenIn((await admin.db.patients.get(id))?.notes);
    // Half the time another device edits the record after the erase, often cut off first so the erase
    // cannot have reached it: its late change must not bring the record back anywhere.
    // Someone who holds the record and may write it by its own view (else its edit is only refused).
    const others: Replica[] = [];
    for (const r of this.#h.replicas()) {
      if (r === admin || (await r.db.patients.get(id)) === undefined) continue;
      const role = roleOf(await readMembership(r.db.replica.dexie, this.#h.space), r.db.deviceId)?.role;
      if (role === "writer" || role === "admin") others.push(r);
    }
    const editor = rnd.next() < 0.5 ? rnd.pick(others) : undefined;
    if (editor && rnd.next() < 0.6 && !net.isPartitioned(editor.name)) {
      net.partition(editor.name);
      this.#h.partitioned();
    }
    this.#h.trail.push(
      `${admin.name} erases ${id.slice(-8)}${editor ? `, ${editor.name} edits it${net.isPartitioned(editor.name) ? " (partitioned)" : ""}` : ""}`,
    );
    await admin.db.patients.erase(id);
    this.#erased.push({ id, token, by: admin.name });
    this.stats.erases++;
    if (!editor) return;
    try {
      await editor.db.patients.update(id, (p) => void (p.notes = `${p.notes} <late ${editor.name}>`));
      this.stats.concurrentEdits++;
    } catch (e) {
      if (!isRefusal(e)) throw e; // it had heard already, or it is no writer
      this.stats.editsRefused++;
      this.#h.trail.push(`  ${editor.name}'s edit refused: ${(e as Error).message}`);
    }
  }

  /** A record (or, `space`, the whole space) back at the version right after a random earlier commit. */
  async #restore(space: boolean): Promise<void> {
    const { rnd } = this.#h;
    const r = rnd.pick(this.#h.replicas());
    if (!r) return;
    const ids = (await r.db.patients.where("kind").equals("patient").ids()) as string[];
    if (ids.length === 0) return;
    const id = rnd.pick(ids);
    const history = await r.db.patients.history(id);
    // The last entry is the current version: restoring to it writes nothing.
    if (history.length < 2) return;
    const to = rnd.pick(history.slice(0, -1)).commit as CommitId;
    if (space) {
      this.#h.trail.push(`${r.name} restores the space to ${to.slice(-12)}`);
      await r.db.restore(this.#h.space, { to });
      this.stats.spaceRestores++;
    } else {
      this.#h.trail.push(`${r.name} restores ${id.slice(-8)} to ${to.slice(-12)}`);
      await r.db.patients.restore(id, to);
      this.stats.restores++;
    }
  }

  /**
   * The erase invariants over the replicas that ended as members, after settling: they all list the
   * same erased ids, which include every erase made by one of them (its operation reached everyone),
   * and none holds anything of an erased record: no row, no document, no history, no change in its
   * commit log, not returned by a query, no canary (its plaintext) anywhere in its IndexedDB but the
   * sealed commit bytes (`_sealed`, ciphertext), and its id nowhere but there, in the tombstone itself
   * (`_erased`) and in `_quarantine` (a quarantined commit names its records, and holds none of their
   * content: the fact of the record stays, PROTOCOL.md 12, seed 5005).
   */
  async failures(live: readonly Replica[]): Promise<string[]> {
    const out: string[] = [];
    if (live.length === 0) return out;
    const { space } = this.#h;
    const lists = await Promise.all(
      live.map(async (r) =>
        (await r.db.replica.dexie.table<ErasedRow, string>("_erased").where("space").equals(space).toArray())
          .map((e) => e.id)
          .sort(),
      ),
    );
    for (const [i, list] of lists.entries())
      if (list.join() !== lists[0]!.join())
        out.push(`${live[i]!.name} lists erased [${list}], ${live[0]!.name} lists [${lists[0]}]`);
    this.stats.datedErased = lists[0]!.filter((id) => this.#dated.has(id)).length;
    const names = new Set(live.map((r) => r.name));
    const expected = new Set([...lists.flat(), ...this.#erased.filter((e) => names.has(e.by)).map((e) => e.id)]);
    // A dated record may also have been swept when a device opened (the sweep on open): its canary too.
    const tokens = new Map([...this.#dated, ...this.#erased.map((e) => [e.id, e.token ?? this.#dated.get(e.id)] as const)]);
    for (const [i, r] of live.entries()) {
      const { db } = r;
      const dexie = db.replica.dexie;
      const queried = new Set(
        (await db.patients.where("kind").equals("patient").toArray()).map((p) => p.id as string),
      );
      const dump = await dumpExcept(r, ["_sealed", "_erased"]);
      for (const id of expected) {
        const where = `${r.name}, erased ${id.slice(-8)}`;
        if (!lists[i]!.includes(id)) out.push(`${where}: not tombstoned`);
        if ((await db.patients.get(id)) !== undefined) out.push(`${where}: get returns it`);
        if (queried.has(id)) out.push(`${where}: a query returns it`);
        if ((await dexie.table("_docs").get(id)) !== undefined) out.push(`${where}: its _docs entry is kept`);
        if ((await dexie.table("patients").get(id)) !== undefined) out.push(`${where}: its row is kept`);
        if ((await db.patients.history(id)).length > 0) out.push(`${where}: it has history`);
        const commits = await dexie.table<StoredCommit>("_commits").where("records").equals(id).count();
        if (commits > 0) out.push(`${where}: ${commits} commits still change it`);
        for (const [table, text] of dump) {
          if (table !== "_quarantine" && text.includes(id)) out.push(`${where}: its id is in ${table}`);
          const token = tokens.get(id);
          if (token && text.includes(token)) out.push(`${where}: its plaintext is in ${table}`);
        }
      }
    }
    return out;
  }
}

/** Each IndexedDB table of a replica but `skip`, as text (bytes decoded, as a plaintext scan would). */
async function dumpExcept(r: Replica, skip: readonly string[]): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const t of r.db.replica.dexie.tables) {
    if (skip.includes(t.name)) continue;
    const rows = await t.toArray();
    out.push([
      t.name,
      rows
        .map((row) => JSON.stringify(row, (_k, v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v)))
        .join("\n"),
    ]);
  }
  return out;
}
