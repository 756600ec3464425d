// Bounded counters in the convergence fuzzer (issue 17 item 1): a stock of doses (min 0) that seeded
// steps take from, add to and ask rights for, on any replica, partitioned or not, across restarts. The
// invariant is checked on every replica after every step and after every batch it applies: the value
// never below its bound, no device holding fewer than zero rights, and the value equal to the bound plus
// every device's rights. After settling, every replica shows the same stock, equal to its start plus
// every add minus every take that succeeded (none lost, none counted twice). The steps draw from a
// stream of their own, so the scenario's own random stream (and the seeds' operations) stays as it was.
import { rightsOfRow, type EscrowSummary } from "../../src/index.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import type { SpaceId } from "../../src/types.ts";
import type { Db, Replica } from "./fuzz-settle.ts";

/** The fuzz collection holding the stock. */
export const STOCK_COLLECTION = { indexes: "id", counters: { doses: { min: 0 } } } as const;

/** What the bounded counter steps did in one scenario. */
export interface EscrowStats {
  takes: number;
  /** Takes refused at once for lack of rights (`InsufficientRights`). */
  refused: number;
  adds: number;
  requests: number;
  /** Invariant checks made (per replica, per step or applied batch). */
  checks: number;
}

interface StockApi {
  insert(v: { doses: number }, o: { space: SpaceId }): Promise<string>;
  get(id: string): Promise<Record<string, unknown> | undefined>;
  take(id: string, field: string, n: number): Promise<void>;
  add(id: string, field: string, n: number): Promise<void>;
  requestRights(id: string, field: string, n: number): Promise<void>;
}

const stockOf = (db: Db) => db.collection("stock" as never) as unknown as StockApi;

/** Why a stock row breaks the invariant, or null. */
function rowProblem(row: Record<string, unknown>): string | null {
  const value = row.doses as number;
  const s = (row.$escrow as EscrowSummary | undefined)?.doses;
  if (!s) return "the stock has no escrow";
  if (!(value >= s.min)) return `the stock is ${value}, below its bound ${s.min}`;
  let sum = 0;
  for (const [device, held] of Object.entries(s.rights)) {
    if (held < 0) return `device ${device.slice(0, 8)} holds ${held} rights`;
    sum += held;
  }
  return sum === value - s.min ? null : `rights sum to ${sum}, the value allows ${value - s.min}`;
}

/** The bounded counter part of a scenario (plain mode). */
export class EscrowScenario {
  readonly stats: EscrowStats = { takes: 0, refused: 0, adds: 0, requests: 0, checks: 0 };
  readonly #rnd: ReturnType<typeof seededRandom>;
  readonly #failures: string[];
  #id: string | undefined;
  #expected = 0;

  constructor(seed: number, failures: string[]) {
    // A stream of its own: the scenario's stream draws what it drew before bounded counters.
    this.#rnd = seededRandom(seed * 2_654_435_761 + 17);
    this.#failures = failures;
  }

  /** Creates the stock on the first replica. */
  async start(db: Db, space: SpaceId): Promise<void> {
    this.#expected = 10 + this.#rnd.int(20);
    this.#id = await stockOf(db).insert({ doses: this.#expected }, { space });
  }

  /** Checks the invariant on `r` whenever it applies a batch of commits. */
  watch(r: Replica, checks: Promise<void>[]): void {
    r.db.replica.onCommits(() => {
      checks.push(this.#check(r).catch(() => undefined));
    });
  }

  async #check(r: Replica): Promise<void> {
    if (!this.#id) return;
    const row = await stockOf(r.db).get(this.#id);
    if (!row) return; // not synced here yet
    this.stats.checks++;
    const why = rowProblem(row);
    if (why) this.#failures.push(`${r.name}: ${why}`);
  }

  /** One seeded step on a random replica (2 in 3 steps), then the invariant on every replica. */
  async step(replicas: readonly Replica[]): Promise<void> {
    const rnd = this.#rnd;
    const r = replicas[rnd.int(replicas.length)];
    const kind = rnd.int(6);
    if (r && this.#id && kind < 4) {
      const stock = stockOf(r.db);
      try {
        if (kind <= 1) {
          const n = 1 + rnd.int(6);
          this.stats.takes++;
          await stock.take(this.#id, "doses", n);
          this.#expected -= n;
        } else if (kind === 2) {
          const n = 1 + rnd.int(3);
          await stock.add(this.#id, "doses", n);
          this.stats.adds++;
          this.#expected += n;
        } else {
          this.stats.requests++;
          await stock.requestRights(this.#id, "doses", 1 + rnd.int(8));
        }
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === "InsufficientRights") this.stats.refused++;
        else if (code !== "NotFound") throw e; // not synced to this replica yet
      }
    }
    for (const x of replicas) await this.#check(x);
  }

  /**
   * True when no device could grant anything more on any replica (no request meets spare rights), so
   * no grant commit can still appear after the replicas agreed.
   */
  async quiet(live: readonly Replica[]): Promise<boolean> {
    if (!this.#id) return true;
    for (const r of live) {
      const s = ((await stockOf(r.db).get(this.#id))?.$escrow as EscrowSummary | undefined)?.doses;
      if (!s) continue;
      const asking = Object.keys(s.wants);
      const giving = Object.keys(s.rights).filter((d) => s.rights[d]! > 0 && !(d in s.wants));
      if (asking.some((a) => giving.some((g) => g !== a))) return false;
    }
    return true;
  }

  /** The end checks over the settled replicas: one value everywhere, the expected one, invariant held. */
  async failures(live: readonly Replica[]): Promise<string[]> {
    const out: string[] = [];
    if (!this.#id) return out;
    for (const r of live) {
      const row = await stockOf(r.db).get(this.#id);
      if (!row) {
        out.push(`${r.name}: no stock`);
        continue;
      }
      const why = rowProblem(row);
      if (why) out.push(`${r.name}: ${why}`);
      const { value } = rightsOfRow(row, "doses", r.db.deviceId);
      if (value !== this.#expected)
        out.push(
          `${r.name}: the stock is ${value}, but the takes and adds that succeeded make ${this.#expected}`,
        );
    }
    return out;
  }
}
