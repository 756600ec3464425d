import { NotSupported, UnsignedDevice } from "../errors.ts";
import { MAX_VECTOR_DEVICES, type MembershipOp } from "../members/membership-op.ts";
import type { StoredCommit } from "../replica/commit.ts";
import type { Replica } from "../replica/replica.ts";
import { waitUntil, type DurableWaitOptions } from "../replica/wait-durable.ts";
import type { MemberRow, SpaceRow, VectorRow } from "../replica/stored-rows.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { appendMembershipOp, opsOf, stateOf } from "./membership-log.ts";

/**
 * Signed receipts that other member devices hold a device's commits (`durable: { devices: k }`,
 * PROTOCOL.md 10 "Hold receipts"). A device that wants them writes a `hold-request` {vector} into the
 * space's membership log after its commits; every other current member device that has stored those
 * devices' commits up to their seqs answers with a `hold` {vector} operation, signed like every log
 * operation: the proof, verifiable by anyone holding the log, that it held them. Both travel as
 * membership commits, by every transport, and stay in the log: one request however many devices it
 * names, and one answer per member device and pass, so a compaction of a space of n devices adds about
 * n operations to its log, not n squared.
 */

type HoldAction = Extract<MembershipOp["action"], { kind: "hold-request" | "hold" }>;

/** The (device, seq) pairs a `hold-request` or `hold` names, in either form (`author`: an older request's default). */
function entriesOf(a: HoldAction, author: string): [string, number][] {
  if ("vector" in a) return Object.entries(a.vector);
  if (a.kind === "hold") return [[a.device, a.seq]];
  return [[a.device ?? author, a.seq]];
}

/** Per space, the (device, seq) a set of commits needs held: the highest seq of each author. */
function needsOf(commits: readonly StoredCommit[]): { space: SpaceId; device: DeviceId; seq: number }[] {
  const need = new Map<string, { space: SpaceId; device: DeviceId; seq: number }>();
  for (const c of commits) {
    const k = `${c.space}|${c.device}`;
    if ((need.get(k)?.seq ?? 0) < c.seq) need.set(k, { space: c.space, device: c.device, seq: c.seq });
  }
  return [...need.values()];
}

/**
 * The current member devices other than `device` whose signed `hold` says they store `device`'s
 * commits of the space up to `seq` or further. Reads only IndexedDB (live queries re-run on it).
 */
export async function holdersOf(
  replica: Replica,
  space: SpaceId,
  device: DeviceId,
  seq: number,
): Promise<DeviceId[]> {
  const { dexie } = replica;
  // Awaited one by one: a Dexie live query stops observing after any non-Dexie await.
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  const rows = await dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
  const state = stateOf(row, rows);
  if (!state) return [];
  const out = new Set<DeviceId>();
  for (const op of opsOf(rows).values()) {
    const a = op.action;
    if (a.kind !== "hold" || op.author === device || !state.deviceOwner.has(op.author)) continue;
    if (entriesOf(a, op.author).some(([d, s]) => d === device && s >= seq)) out.add(op.author as DeviceId);
  }
  return [...out].sort();
}

/**
 * Refuses `durable: { devices }` for a transaction touching `spaces` before anything is written: only a
 * signed device can ask, and only a space with members has member devices to sign receipts.
 */
export async function assertHoldable(replica: Replica, spaces: Iterable<SpaceId>): Promise<void> {
  if (!replica.identity) throw new UnsignedDevice();
  for (const space of new Set(spaces)) {
    const row = await replica.dexie.table<SpaceRow>("_spaces").get(space);
    const rows = await replica.dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
    if (!stateOf(row, rows))
      throw new NotSupported(
        "durable.devices",
        'durable: { devices } needs a space with members (receipts are signed by member devices), and this one has none: use durable: "relay".',
      );
  }
}

/**
 * Asks the other member devices for hold receipts of `commits` (this device's, just saved), then
 * resolves once `devices` of them have signed one for every commit, as this device learns by sync.
 * A space without a membership log has no signed member devices to ask: `NotSupported`, before any
 * request is written. Ends early like `waitForRelay` (`DurabilityPending`: closed, aborted, timeout).
 */
export async function waitForHolders(
  replica: Replica,
  commits: readonly StoredCommit[],
  devices: number,
  result: unknown,
  options: DurableWaitOptions = {},
): Promise<void> {
  const wanted = needsOf(commits);
  if (wanted.length === 0) return;
  // One request per space, naming every device of it whose commits must be held.
  const bySpace = new Map<SpaceId, Record<string, number>>();
  for (const w of wanted) bySpace.set(w.space, { ...bySpace.get(w.space), [w.device]: w.seq });
  for (const [space, vector] of bySpace) await appendMembershipOp(replica, space, { kind: "hold-request", vector });
  return waitUntil(
    replica,
    async () => {
      let least = Infinity;
      for (const w of wanted)
        least = Math.min(least, (await holdersOf(replica, w.space, w.device, w.seq)).length);
      return least;
    },
    (least) => least >= devices,
    commits.map((c) => c.id),
    result,
    options,
  );
}

/**
 * Answers the hold requests of a space that this device can answer: every device whose commits a
 * current member device asked receipts for (its own, or any device's) up to a seq this device has
 * stored (its `_vectors` entry), and that this device has not answered that far, goes into one `hold`
 * with everything it holds of each. Runs after membership operations or remote commits arrive;
 * requests whose commits have not arrived yet are answered when they do. Writes nothing when this
 * device is no current member device. Returns how many devices it vouched for.
 */
export async function answerHoldRequests(replica: Replica, space: SpaceId): Promise<number> {
  if (!replica.identity || replica.closed) return 0;
  const { dexie } = replica;
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  const rows = await dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
  // Runs after every remote batch: resolving the log is the costly part, and most spaces never ask.
  if (!rows.some((r) => r.op.includes('"hold-request"'))) return 0;
  const state = stateOf(row, rows);
  const me = replica.device;
  if (!state?.deviceOwner.has(me)) return 0;
  const asked = new Map<string, number>();
  const answered = new Map<string, number>();
  for (const op of opsOf(rows).values()) {
    const a: MembershipOp["action"] = op.action;
    // Not its own requests: their author counts itself a holder already (a compaction's snapshot).
    if (a.kind === "hold-request" && op.author !== me && state.deviceOwner.has(op.author)) {
      // Whose commits: those it names (a compaction asks for every device's), the author's own included.
      for (const [of, seq] of entriesOf(a, op.author))
        if (of !== me) asked.set(of, Math.max(asked.get(of) ?? 0, seq));
    } else if (a.kind === "hold" && op.author === me)
      for (const [of, seq] of entriesOf(a, me)) answered.set(of, Math.max(answered.get(of) ?? 0, seq));
  }
  // One answer for every device this device can vouch for now; the others when the rest arrives.
  const vector: Record<string, number> = {};
  for (const [device, seq] of asked) {
    if ((answered.get(device) ?? 0) >= seq) continue;
    const held = (await dexie.table<VectorRow>("_vectors").get([space, device]))?.seq ?? 0;
    if (held >= seq) vector[device] = held;
  }
  const entries = Object.entries(vector);
  for (let i = 0; i < entries.length; i += MAX_VECTOR_DEVICES)
    await appendMembershipOp(replica, space, {
      kind: "hold",
      vector: Object.fromEntries(entries.slice(i, i + MAX_VECTOR_DEVICES)),
    });
  return entries.length;
}

/**
 * Keeps this device answering hold requests: after every batch of remote commits (their spaces) and
 * whenever the database absorbs membership operations (`answerHoldRequests` there). One pass per space
 * at a time; a pass asked for while one runs runs once more after it. Returns the unsubscribe.
 */
export function watchHoldRequests(replica: Replica): () => void {
  const running = new Map<SpaceId, Promise<void>>();
  const again = new Set<SpaceId>();
  const run = (space: SpaceId): void => {
    if (running.has(space)) {
      again.add(space);
      return;
    }
    const pass = answerHoldRequests(replica, space)
      .then(() => undefined)
      .catch(() => undefined) // closed meanwhile, or a refusal: the next batch tries again
      .finally(() => {
        running.delete(space);
        if (again.delete(space) && !replica.closed) run(space);
      });
    running.set(space, pass);
  };
  return replica.onCommits((commits, origin) => {
    if (origin !== "remote") return;
    for (const space of new Set(commits.map((c) => c.space))) run(space);
  });
}

/**
 * Before a compaction (`db.compact`): asks every current member device for hold receipts of every
 * device's commits up to `vector`, and resolves once each of them has signed one (this device, which
 * published the snapshot at `vector`, and each device for its own commits excepted). A device that is
 * behind could never get the compacted commits afterwards, so the compaction waits for it (offline:
 * until it is back). Ends early by `signal`, `timeout` or `close()`, rejecting with `DurabilityPending`
 * whose `result` lists the devices still missing.
 */
export async function waitForEveryHolder(
  replica: Replica,
  space: SpaceId,
  vector: Readonly<Record<string, number>>,
  options: DurableWaitOptions = {},
): Promise<void> {
  const me = replica.device;
  const wanted = Object.entries(vector).filter(([, seq]) => seq > 0);
  if (wanted.length > 0)
    await appendMembershipOp(replica, space, { kind: "hold-request", vector: Object.fromEntries(wanted) });
  const missing: string[] = [];
  return waitUntil(
    replica,
    async () => {
      const row = await replica.dexie.table<SpaceRow>("_spaces").get(space);
      const rows = await replica.dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
      const current = [...(stateOf(row, rows)?.deviceOwner.keys() ?? [])];
      const lacking = new Set<string>();
      for (const [device, seq] of wanted) {
        const holders = new Set<string>(await holdersOf(replica, space, device as DeviceId, seq));
        for (const d of current) if (d !== me && d !== device && !holders.has(d)) lacking.add(d);
      }
      return [...lacking].sort();
    },
    (lacking) => {
      missing.splice(0, missing.length, ...lacking);
      return lacking.length === 0;
    },
    [],
    missing,
    options,
  );
}
