import { bytesEqual } from "../../src/protocol/index.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import type { RecordId, SpaceId } from "../../src/types.ts";
import type { InProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { hostileFailures, type InjectedAt } from "./hostile-invariant.ts";
import { HOSTILE_ACTIONS, HostileMember, type HostileAction, type HostileOptions } from "./hostile-member.ts";
import {
  readHostileReports,
  reported,
  watchErrors,
  type HostileDb,
  type SeenError,
} from "./hostile-reports.ts";

/** An honest replica, as the hostile scenario needs it. */
interface Honest {
  name: string;
  db: HostileDb;
}

/**
 * The hostile part of one fuzz scenario (`runScenario(seed, { hostile })`): the hostile member, the
 * seeded plan of which input it injects after which step, the errors every honest replica reported
 * (across restarts), how often the relay served the forged snapshot, and the hostile invariant.
 *
 * @example
 * const h = new HostileScenario({ seed, steps, relay, space, db: () => hostileDb, options: {} });
 * for (let step = 0; step < steps; step++) { ...; await h.step(step, { honest, victims }); }
 * const failures = await h.failures(honest);
 */
export class HostileScenario {
  /** The hostile replica's name in the scenario. */
  static readonly NAME = "hostile";
  readonly injected: InjectedAt[] = [];
  forgedSnapshotsServed = 0;
  /** Honest replicas that stored the forged snapshot's forged document (imported the snapshot). */
  readonly forgedImportedBy = new Set<string>();
  /**
   * Honest replicas that reported the forged snapshot (audited on receipt and refused before the
   * import: the import hook above then never fires, so this is what shows the input was met).
   */
  readonly forgedReportedBy = new Set<string>();
  readonly #member: HostileMember;
  readonly #plan = new Map<number, HostileAction[]>();
  readonly #errors = new Map<string, SeenError[]>();

  constructor(opts: {
    seed: number;
    steps: number;
    relay: InProcessRelay;
    space: SpaceId;
    db: () => HostileDb;
    options: HostileOptions;
  }) {
    // Its own seeded stream, so what it crafts does not depend on the honest traffic's draws.
    const rnd = seededRandom(opts.seed ^ 0x4057113);
    const relay = opts.relay;
    this.#member = new HostileMember({
      db: opts.db,
      // A clean link (no faults): the invariant needs to know exactly what the relay took.
      transport: memoryTransport((s, t, e, c, p) => relay.accept(s, t, e as never, c, p), {
        label: "hostile",
      }),
      space: opts.space,
      rnd,
      options: opts.options,
    });
    for (const a of rnd.shuffle(opts.options.actions ?? HOSTILE_ACTIONS)) {
      const at = rnd.int(opts.steps);
      this.#plan.set(at, [...(this.#plan.get(at) ?? []), a]);
    }
    // Counts how often the relay hands out the forged snapshot (to a bootstrapping device).
    const get = relay.store.getSnapshot.bind(relay.store);
    relay.store.getSnapshot = async (space) => {
      const got = await get(space);
      const forged = this.#member.forgedSnapshot;
      if (got && forged && bytesEqual(got.bytes, forged)) this.forgedSnapshotsServed++;
      return got;
    };
  }

  /** Records the errors an honest replica reports while open; returns the function that stops it. */
  watch(name: string, db: HostileDb): () => void {
    const seen = this.#errors.get(name) ?? [];
    this.#errors.set(name, seen);
    // A joiner may be served the forged snapshot and not import it (commits of the space arrived
    // meanwhile, or the download broke off): only one that stored its forged document must report it.
    const docs = db.replica.dexie.table("_docs");
    const stored = (doc: { heads?: unknown } | undefined) => {
      const forged = this.#member.forgedHeads;
      const heads: unknown = doc?.heads;
      if (forged.length > 0 && Array.isArray(heads) && forged.every((h) => heads.includes(h)))
        this.forgedImportedBy.add(name);
    };
    const creating = (_pk: unknown, doc: { heads?: unknown }) => void stored(doc);
    const updating = (mods: object, _pk: unknown, doc: object) => void stored({ ...doc, ...mods });
    docs.hook("creating", creating);
    docs.hook("updating", updating);
    const stop = watchErrors(db, seen).stop;
    return () => {
      stop();
      docs.hook("creating").unsubscribe(creating);
      docs.hook("updating").unsubscribe(updating);
    };
  }

  /** Injects what the plan puts after `step`; returns what it injected. */
  async step(
    step: number,
    ctx: { honest: readonly Honest[]; victims: readonly RecordId[] },
  ): Promise<InjectedAt[]> {
    const done: InjectedAt[] = [];
    for (const action of this.#plan.get(step) ?? []) {
      await this.#member.inject(action, ctx);
      const at = { ...this.#member.injected.at(-1)!, witnesses: ctx.honest.map((h) => h.name) };
      this.injected.push(at);
      done.push(at);
    }
    return done;
  }

  /** Devices of the poison commits: the honest replicas refuse them, so need not hold them. */
  poisonDevices(): Set<string> {
    const poison = new Set<string>();
    for (const i of this.injected)
      if (i.device && i.action !== "equivocation" && i.action !== "many-devices") poison.add(i.device);
    return poison;
  }

  /** The hostile invariant over the healed honest replicas (`hostileFailures`). */
  async failures(honest: readonly Honest[]): Promise<string[]> {
    const views = honest.map((h) => ({ ...h, errors: this.#errors.get(h.name) ?? [] }));
    for (const v of views)
      if (reported(await readHostileReports(v.db, v.errors), { kind: "snapshot" }))
        this.forgedReportedBy.add(v.name);
    return hostileFailures(views, this.injected, this.forgedImportedBy);
  }

  /** One line naming the inputs injected so far, for a failure message. */
  trail(): string {
    return `hostile inputs so far: ${this.injected.map((i) => `${i.action} (${i.answer})`).join(", ") || "none"}`;
  }
}
