import * as A from "@automerge/automerge";
import { buildFromCreation } from "../../src/replica/creation.ts";
import type { RecordChange } from "../../src/replica/commit.ts";
import { sealSnapshot } from "../../src/snapshots/snapshot-seal.ts";
import { encodeSnapshot, type SnapshotContent } from "../../src/snapshots/snapshot-codec.ts";
import { readSnapshot } from "../../src/snapshots/snapshot-io.ts";
import { publishableSnapshot } from "../../src/snapshots/publishable-snapshot.ts";
import { snapshotWire } from "../../src/snapshots/snapshot-exchange.ts";
import { encodeBundle } from "../../src/bundles/bundle.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import type { seededRandom } from "../../src/testing/seeded-random.ts";
import type { Transport } from "../../src/transports/transport.ts";
import type { DeviceId, RecordId, SpaceId } from "../../src/types.ts";
import {
  commitOf,
  deepCommit,
  hugeChange,
  idCreation,
  idRoot,
  manyDeviceInsert,
  POISON_PREFIX,
  sealAs,
  seededDevice,
  seededIdentity,
  canSignAs,
  seededRecord,
  twinOf,
} from "./hostile-commits.ts";
import { HostileLink, type LinkOutcome } from "./hostile-link.ts";
import type { HostileDb } from "./hostile-reports.ts";

/** The hostile inputs of issue 12 the fuzzer's hostile member can inject (items 1-5). */
export type HostileAction =
  | "deep" // item 1: a creation nested `depth` deep
  | "huge" // item 1 (and 7): one change setting `keys` map keys
  | "creation-id" // item 2: a remote creation whose content has an `id` naming another record
  | "root-id" // item 2: an Automerge root with such an `id`
  | "equivocation" // item 3: a forged twin of another device's commit, handed over as a bundle file
  | "many-devices" // item 4: `devices` fake device ids with one commit each
  | "forged-snapshot"; // item 5: a snapshot with forged commits and rows, uploaded to the relay

/** Every hostile action, in a fixed order (the driver shuffles them by seed). */
export const HOSTILE_ACTIONS: readonly HostileAction[] = [
  "deep",
  "huge",
  "creation-id",
  "root-id",
  "equivocation",
  "many-devices",
  "forged-snapshot",
];

/** Fake device ids of `many-devices` unless the options say otherwise. */
export const DEFAULT_FAKE_DEVICES = 40;

/** Options of the hostile member (every count bounded so a run stays short). */
export interface HostileOptions {
  /** Which inputs to inject, each once per run; default all of `HOSTILE_ACTIONS`. */
  actions?: readonly HostileAction[];
  /**
   * Fake device ids of `many-devices`; default 40. Every honest replica applies one commit per fake
   * device, and under fake-indexeddb with six replicas in one process 200 of them already take 15-30 s
   * of the settle time (the apply path's cost per new device, not a hang); above 4,096 crosses the old
   * vector cap of protocol 1.
   */
  devices?: number;
  /** Nesting depth of `deep`; default 20,000. */
  depth?: number;
  /** Map keys of `huge`; default 40,000. */
  keys?: number;
}

/** One hostile input and what became of it. */
export interface Injected {
  action: HostileAction;
  /** The relay's answer (`acked`, `stored`, an error code), `imported` for a bundle, or why not sent. */
  answer: string;
  /** Commit id of a poison commit; device and seq of an equivocation. */
  commit?: string;
  device?: DeviceId;
  seq?: number;
  /** The honest replica a bundle was handed to. */
  target?: string;
  /** Fake devices whose one (valid) commit the relay stored (`many-devices`). */
  devices?: DeviceId[];
}

/**
 * A member turned hostile: a device that holds the space key like any other (it syncs normally through
 * its own `db`) and, when the driver says so, injects hand-made inputs through a raw relay link or a
 * bundle file. Every commit is sealed with the real sealing code, so only the replica's own checks
 * stand between it and the honest devices. Poison rows carry a `name` starting with `POISON_PREFIX`.
 *
 * @example
 * const h = new HostileMember({ db: () => db, transport, space, rnd });
 * await h.inject("deep", { honest, victims });
 */
export class HostileMember {
  readonly injected: Injected[] = [];
  /** The sealed forged snapshot the relay stored, to recognise it when served. */
  forgedSnapshot: Uint8Array | null = null;
  /** The heads of the forged record's document in that snapshot: a replica storing them imported it. */
  forgedHeads: readonly string[] = [];
  readonly #dbOf: () => HostileDb;
  readonly #transport: Transport;
  readonly #space: SpaceId;
  readonly #rnd: ReturnType<typeof seededRandom>;
  readonly #options: Required<Omit<HostileOptions, "actions">>;

  /** `db`: the member's current database (it may be reopened during the run). */
  constructor(opts: {
    db: () => HostileDb;
    transport: Transport;
    space: SpaceId;
    rnd: ReturnType<typeof seededRandom>;
    options?: HostileOptions;
  }) {
    this.#dbOf = opts.db;
    this.#transport = opts.transport;
    this.#space = opts.space;
    this.#rnd = opts.rnd;
    this.#options = {
      devices: opts.options?.devices ?? DEFAULT_FAKE_DEVICES,
      depth: opts.options?.depth ?? 20_000,
      keys: opts.options?.keys ?? 40_000,
    };
  }

  /**
   * Injects one hostile input. `honest` are the honest replicas (bundle targets), `victims` record ids
   * whose rows item 2 tries to overwrite. Never throws for what the relay or a replica refuses: that
   * is recorded in `injected`.
   */
  async inject(
    action: HostileAction,
    ctx: { honest: readonly { name: string; db: HostileDb }[]; victims: readonly RecordId[] },
  ): Promise<void> {
    const key = await this.#key();
    const rnd = this.#rnd;
    const fresh = async () => (await seededIdentity(rnd)).device;
    switch (action) {
      case "deep": {
        const { commit, plaintext } = deepCommit(
          this.#space,
          await fresh(),
          seededRecord(rnd),
          this.#options.depth,
        );
        const { answer } = await this.#upload([await sealAs(key, commit, null, plaintext)]);
        return void this.injected.push({ action, answer, commit: commit.id, device: commit.device, seq: 1 });
      }
      case "huge":
        return this.#poison(action, key, hugeChange(seededRecord(rnd), await fresh(), this.#options.keys));
      case "creation-id":
      case "root-id": {
        if (ctx.victims.length === 0) return void this.injected.push({ action, answer: "no victim" });
        const victim = rnd.pick(ctx.victims);
        const change =
          action === "creation-id"
            ? idCreation(seededRecord(rnd), victim)
            : idRoot(seededRecord(rnd), await fresh(), victim);
        return this.#poison(action, key, change);
      }
      case "many-devices":
        return this.#manyDevices(key);
      case "equivocation":
        return this.#equivocate(key, ctx.honest);
      case "forged-snapshot":
        return this.#forgeSnapshot(key);
    }
  }

  get #db(): HostileDb {
    return this.#dbOf();
  }

  async #key(): Promise<Uint8Array> {
    const row = await this.#db.replica.dexie.table<SpaceRow>("_spaces").get(this.#space);
    if (!row) throw new Error(`the hostile member has not joined space ${this.#space}`);
    return row.key;
  }

  async #upload(sealed: readonly Uint8Array[]): Promise<LinkOutcome> {
    const link = await this.#link();
    if (!link) return { answer: "no link", acked: 0 };
    try {
      return await link.upload(sealed);
    } finally {
      link.close();
    }
  }

  /** A raw link saying hello as a made-up device, so it never stands in for the member's own session. */
  async #link(): Promise<HostileLink | null> {
    return HostileLink.open(this.#transport, this.#space, await this.#key(), seededDevice(this.#rnd));
  }

  /** A poison commit: seq 1 of a fresh fake device, so it blocks no real device's chain. */
  async #poison(
    action: HostileAction,
    key: Uint8Array,
    change: Parameters<typeof commitOf>[3],
  ): Promise<void> {
    const commit = commitOf(this.#space, (await seededIdentity(this.#rnd)).device, 1, change);
    const { answer } = await this.#upload([await sealAs(key, commit, null)]);
    this.injected.push({ action, answer, commit: commit.id, device: commit.device, seq: 1 });
  }

  async #manyDevices(key: Uint8Array): Promise<void> {
    const devices: DeviceId[] = [];
    const sealed: Uint8Array[] = [];
    for (let i = 0; i < this.#options.devices; i++) {
      const device = (await seededIdentity(this.#rnd)).device;
      devices.push(device);
      sealed.push(
        await sealAs(
          key,
          commitOf(this.#space, device, 1, manyDeviceInsert(seededRecord(this.#rnd), i)),
          null,
        ),
      );
    }
    // Frame by frame: what the relay acked before a refusal stays stored.
    const { answer, acked } = await this.#upload(sealed);
    this.injected.push({ action: "many-devices", answer, devices: devices.slice(0, acked) });
  }

  /**
   * Item 3: picks a commit of its own device that an honest replica holds, forges a different commit
   * for the same (device, seq), signed with its own key and chained to its previous commit, and hands it
   * to that replica as a bundle file (the relay refuses a second commit for a held seq, so a file or a
   * peer is how a twin reaches a replica that holds the first). Commits are signed, so a member can only
   * equivocate as its own devices: a twin of another device's commit is refused as `SignatureInvalid`
   * (tests in client/test/hostile cover that).
   */
  async #equivocate(key: Uint8Array, honest: readonly { name: string; db: HostileDb }[]): Promise<void> {
    const mine = this.#db.replica.device;
    const identity = this.#db.replica.identity;
    if (identity) canSignAs(identity);
    const own = (await this.#db.vector([this.#space]))[this.#space]?.[mine] ?? 0;
    const target = honest.length > 0 ? this.#rnd.pick(honest) : undefined;
    if (!target || !identity || own === 0)
      return void this.injected.push({ action: "equivocation", answer: "no victim" });
    const device = mine;
    const seq = 1 + this.#rnd.int(own);
    // The target must hold the first version: what it lacks of ours up to `seq` goes to it first, in a
    // file, as a peer or the relay would bring it (so the twin meets a held commit whatever the timing).
    const theirs = (await target.db.vector([this.#space]))[this.#space]?.[mine] ?? 0;
    if (theirs < seq) {
      const sealedOwn = new SpaceSealer(this.#db.replica.dexie, this.#space, key);
      const real = await sealedOwn.sealedRange(mine, theirs + 1, seq);
      try {
        await target.db.importBundle(
          await encodeBundle({ space: this.#space, since: { [mine]: theirs }, commits: real }),
        );
      } catch {
        return void this.injected.push({ action: "equivocation", answer: "no victim" });
      }
    }
    const sealer = new SpaceSealer(this.#db.replica.dexie, this.#space, key);
    const range = await sealer.sealedRange(device as DeviceId, Math.max(1, seq - 1), seq);
    const original = (await sealer.open(range.at(-1)!)).commit;
    const twin = await sealAs(key, twinOf(original), seq > 1 ? range[0]! : null);
    const file = await encodeBundle({ space: this.#space, since: { [device]: seq - 1 }, commits: [twin] });
    let answer = "imported";
    try {
      await target.db.importBundle(file);
    } catch (e) {
      answer = `refused: ${(e as { code?: string }).code ?? (e as Error).message}`;
    }
    this.injected.push({
      action: "equivocation",
      answer,
      device: device as DeviceId,
      seq,
      target: target.name,
    });
  }

  /** A live patient's document in `content` (added, built from its log, if it has none yet), or null. */
  #forgeableDoc(content: SnapshotContent): SnapshotContent["docs"][number] | null {
    const live = content.docs.filter((d) => !d.deleted && d.collection === "patients");
    if (live.length > 0) return this.#rnd.pick(live);
    const log = new Map<string, RecordChange[]>();
    for (const c of content.commits)
      for (const rc of c.changes) log.set(rc.record, [...(log.get(rc.record) ?? []), rc]);
    const created = [...log.values()].filter(
      (rcs) =>
        rcs[0]!.collection === "patients" &&
        rcs[0]!.create !== undefined &&
        typeof rcs[0]!.create.json.name === "string" &&
        rcs.every((rc) => rc.op !== "delete"),
    );
    if (created.length === 0) return null;
    const rcs = this.#rnd.pick(created);
    const [built] = A.applyChanges(
      buildFromCreation(rcs[0]!.record, rcs[0]!.create!, "00".repeat(16)),
      rcs.flatMap((rc) => rc.changes as Uint8Array[]),
    );
    const doc = {
      id: rcs[0]!.record,
      collection: "patients",
      deleted: false,
      bin: A.save(built),
      heads: A.getHeads(built),
    };
    content.docs.push(doc);
    return doc;
  }

  /**
   * Item 5: this device's own snapshot of the space with one record forged (its document and row renamed
   * to poison by a change in no commit), sealed with the space's snapshot key and uploaded: the relay
   * cannot tell, only a joiner can.
   */
  async #forgeSnapshot(key: Uint8Array): Promise<void> {
    // What an honest replica would publish (quarantined slots left out: a snapshot naming one is refused
    // whole for its structure, before the audit this forgery is meant to meet; sealing one whose sealed
    // bytes this member lacks threw, soak seed 10311).
    const content: SnapshotContent | null = publishableSnapshot(
      await readSnapshot(this.#db.replica, this.#space),
    );
    if (!content) return void this.injected.push({ action: "forged-snapshot", answer: "unpublishable" });
    const name = `${POISON_PREFIX}snapshot`;
    // Format 2 ties the log to the sealed commits, so the forgery that can travel is in the records: one
    // live record's document gains a change that is in no commit (its name set to a poison one), with
    // its heads and row to match, as a member with the key could write. Records only ever created (no
    // document yet) get one built from their log first. The joiner's audit must catch it.
    const doc = this.#forgeableDoc(content);
    if (doc) {
      const forged = A.change(A.load<Record<string, unknown>>(doc.bin), (d) => void (d.name = name));
      doc.bin = A.save(forged);
      doc.heads = A.getHeads(forged);
      if (doc.row) doc.row = { ...doc.row, name };
    }
    const heads = doc?.heads ?? [];
    const link = await this.#link();
    if (!link) return void this.injected.push({ action: "forged-snapshot", answer: "no link" });
    // Claims no commit the relay lacks (it refuses such a snapshot with `gap`): this device's commits not
    // yet uploaded are left out of the log and the vector (the rows still show them: forged too).
    const held = (d: string) => link.heads.get(d) ?? 0;
    content.commits = content.commits.filter((c) => c.seq <= held(c.device));
    content.vector = Object.fromEntries(
      Object.entries(content.vector)
        .map(([d, seq]) => [d, Math.min(seq, held(d))] as const)
        .filter(([, seq]) => seq > 0),
    );
    let answer = "empty";
    if (content.commits.length > 0) {
      // Format 2 carries the sealed commits themselves (the forged commit above cannot travel in it
      // without breaking its chain): the forgery left is the rows, which the joiner's audit must catch.
      const sealer = new SpaceSealer(this.#db.replica.dexie, this.#space, key);
      const wire = await snapshotWire(sealer, content, this.#db.replica.device);
      const sealed = await sealSnapshot(key, this.#space, content.vector, encodeSnapshot(wire));
      answer = (await link.putSnapshot(content.vector, sealed)).answer;
      if (answer === "stored") {
        this.forgedSnapshot = sealed;
        this.forgedHeads = heads;
      }
    }
    link.close();
    this.injected.push({ action: "forged-snapshot", answer });
  }
}
