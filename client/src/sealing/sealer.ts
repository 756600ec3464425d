import { identityFromStored } from "../lock/identity-as-bytes.ts";
import { CommitKeys } from "./commit-keys.ts";
import { openCommit, sealCommit, sha256 } from "../crypto/seal.ts";
import { subtle } from "../crypto/subtle.ts";
import { DecryptError, ShoalError, UnsignedDevice, ValidationError } from "../errors.ts";
import type { DeviceIdentity } from "../identity/device-identity.ts";
import { signBytes } from "../identity/signing.ts";
import {
  COMMIT_FORMAT_VERSION,
  MAX_COMMIT_BYTES,
  bytesEqual,
  canonicalJson,
  decodeSealedCommit,
  MEMBERSHIP_EPOCH,
  membershipOpText,
  verifyOp,
  opId,
  type MembershipOp,
  encodeCommitHeader,
  appendSignature,
  unsignedCommit,
  SIGNING_LABELS,
  fromHex,
  toHex,
  type CommitHeader,
} from "../protocol/index.ts";
import type { Dexie } from "dexie";
import type { Commit, StoredCommit } from "../replica/commit.ts";
import { commitTooLarge, sealedBytesOfPlaintext } from "../replica/sealed-size.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import { decodeCommitPlaintext, encodeCommitPlaintext } from "./commit-codec.ts";
import { verifyCommitSignature } from "./commit-signature.ts";
import { markVerifiedMembership } from "../members/verified-ops.ts";
import { integrityLogOf, type IntegrityLog, type IntegritySource } from "./integrity.ts";

/** A row of `_sealed`. */
interface SealedRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
  bytes: Uint8Array;
  /** Where these bytes came from (absent in rows kept by older versions). */
  source?: IntegritySource;
  /**
   * A compacted head (PROTOCOL.md 12): `bytes` is empty and this is their SHA-256, kept so the
   * device's next commit still chains to it (`applyCompactions`).
   */
  hash?: Uint8Array;
}

/** The SHA-256 of a kept commit: its stated hash when compacted, else of its bytes. */
async function keptHash(row: Pick<SealedRow, "bytes" | "hash">): Promise<Uint8Array> {
  return row.hash ?? (await sha256(row.bytes));
}

/** The hex SHA-256 of sealed bytes, as the integrity report shows it. */
async function hashOf(bytes: Uint8Array): Promise<string> {
  return toHex(await sha256(bytes));
}

/**
 * A commit that opens with the space's key but does not follow the previous commit of its device this
 * replica kept (chain hash). `keptSource` says where that previous commit came from (a snapshot's log
 * contradicted by the relay's next commit, for one). Its `code` stays `DecryptError`.
 */
export class ChainMismatch extends DecryptError {
  readonly keptSource: IntegritySource | undefined;
  constructor(message: string, keptSource: IntegritySource | undefined) {
    super(message);
    this.keptSource = keptSource;
  }
}

/** A held (device, seq) another version of which arrived (see `SpaceSealer.screen`). */
export interface Clash {
  device: DeviceId;
  seq: number;
  keptSource: IntegritySource;
}

/** A received sealed commit, opened and checked. */
export interface OpenedCommit {
  commit: Commit;
  sealed: Uint8Array;
}

const ZERO_HASH = new Uint8Array(32);
/** A commit sealed under a key epoch this device does not hold (yet, or ever: it was removed). */
export class KeyUnavailable extends DecryptError {
  readonly epoch: number;
  constructor(epoch: number, message: string) {
    super(message);
    this.epoch = epoch;
  }
}

/**
 * Seals and opens one space's commits. Sealing is deterministic (synthetic IV, canonical plaintext), so
 * a commit sealed in two tabs, or again after the relay lost it, is byte-identical and the relay takes
 * it as a duplicate. Sealed bytes are kept in `_sealed` so the chain hash of the next commit and
 * forwarding to peers need no work; anything missing there is sealed again from the commit log.
 */
export class SpaceSealer {
  readonly space: SpaceId;
  readonly #spaceBytes: Uint8Array;
  readonly #key: Uint8Array;
  /** Keys of later epochs, as read from the space's row (they only ever get added). */
  readonly #epochKeys = new Map<number, Uint8Array>();
  readonly #dexie: Dexie;
  /** Commit and nonce keys per device and epoch, derived once. */
  readonly #keys = new CommitKeys();
  /** Where this database's integrity findings go (`db.integrity`). */
  readonly integrity: IntegrityLog;
  #identityRead: Promise<DeviceIdentity> | undefined;

  constructor(dexie: Dexie, space: SpaceId, key: Uint8Array) {
    this.#dexie = dexie;
    this.integrity = integrityLogOf(dexie);
    this.space = space;
    this.#spaceBytes = fromHex(space, 16);
    this.#key = key;
  }

  /**
   * The sealed bytes of commits `from..to` of `device` (all held in the log), sealing what is not yet
   * sealed, in order, so each one's chain hash is at hand.
   */
  async sealedRange(device: DeviceId, from: number, to: number): Promise<Uint8Array[]> {
    const floor = await this.floorOf(device);
    if (from <= floor)
      throw new ShoalError(
        "Compacted",
        `Commits up to ${floor} of device ${device} in space ${this.space} were compacted (PROTOCOL.md 12): not kept here any more; the relay's snapshot stands for them.`,
      );
    const sealedT = this.#dexie.table<SealedRow>("_sealed");
    // One read also fetches the commit before the range, whose hash the first one to seal chains to.
    const first = Math.max(1, from - 1);
    const have = await sealedT
      .where("[space+device+seq]")
      .between([this.space, device, first], [this.space, device, to], true, true)
      .toArray();
    const bySeq = new Map(have.map((r) => [r.seq, r]));
    const inRange = have.filter((r) => r.seq >= from);
    if (inRange.length === to - from + 1 && inRange.every((r) => !r.hash)) return inRange.map((r) => r.bytes);
    const commits = await this.#dexie
      .table<StoredCommit>("_commits")
      .where("[space+device+seq]")
      .between([this.space, device, from], [this.space, device, to], true, true)
      .toArray();
    if (commits.length !== to - from + 1)
      throw new ValidationError(`Commits ${from}..${to} of ${device} are not all held.`);
    // The chain hash to seal the first missing one with: a compacted head states it; bytes are hashed
    // only when a commit is actually sealed here.
    const before = bySeq.get(from - 1);
    const prevHash: Uint8Array | null = before ? await keptHash(before) : null;
    let prevBytes: Uint8Array | undefined =
      from > 1 && !before ? (await this.sealedRange(device, from - 1, from - 1))[0] : undefined;
    const out: Uint8Array[] = [];
    const fresh: SealedRow[] = [];
    for (const c of commits) {
      let bytes = bySeq.get(c.seq)?.bytes;
      if (!bytes || bytes.length === 0) {
        bytes = await this.#seal(c, prevBytes ? await sha256(prevBytes) : prevHash);
        fresh.push({ space: this.space, device, seq: c.seq, bytes, source: "tab" });
      }
      out.push(bytes);
      prevBytes = bytes;
    }
    if (fresh.length > 0) await sealedT.bulkPut(fresh);
    return out;
  }

  /**
   * The highest seq of `device` a compaction applied here covers (0: none): its sealed commits up to
   * it are no longer kept (`applyCompactions`), so nothing at or below it can be forwarded.
   */
  async floorOf(device: DeviceId): Promise<number> {
    const row = await this.#dexie.table<SpaceRow>("_spaces").get(this.space);
    return row?.compaction?.floor?.[device] ?? 0;
  }

  /**
   * The membership commits of `device` still kept at or below its compaction floor (a compaction keeps
   * them: they are the log), in seq order; empty when nothing was compacted.
   */
  async keptMembership(device: DeviceId): Promise<Uint8Array[]> {
    const floor = await this.floorOf(device);
    if (floor === 0) return [];
    const rows = await this.#dexie
      .table<SealedRow>("_sealed")
      .where("[space+device+seq]")
      .between([this.space, device, 1], [this.space, device, floor], true, true)
      .toArray();
    return rows.filter((r) => !r.hash && r.bytes.length > 0).map((r) => r.bytes);
  }

  /** Whether the space has a membership log (its snapshots are not published, see the session). */
  async hasMembershipLog(): Promise<boolean> {
    return (await this.#dexie.table("_members").where("space").equals(this.space).count()) > 0;
  }

  /** The space key of `epoch` (0: the space's first key), read from its row when first needed. */
  async keyOf(epoch: number): Promise<Uint8Array | undefined> {
    if (epoch === 0) return this.#key;
    let key = this.#epochKeys.get(epoch);
    if (!key) {
      const row = await this.#dexie.table<SpaceRow>("_spaces").get(this.space);
      for (const [e, k] of Object.entries(row?.epochKeys ?? {})) this.#epochKeys.set(Number(e), k);
      key = this.#epochKeys.get(epoch);
    }
    return key;
  }

  /** The hash of the commit `c` chains to (`prevHash`), or null for a first commit. */
  async #seal(c: Commit, prev: Uint8Array | null): Promise<Uint8Array> {
    const identity = await this.#identity();
    // Only a device's own key can sign its commits: another device's commit that is in the log but not
    // kept sealed (a commit applied by an older version) cannot be forwarded, only fetched again.
    if (identity.device !== c.device)
      throw new ValidationError(
        `Commit ${c.id} is not kept sealed here and only its own device can sign it.`,
      );
    const device = fromHex(c.device, 16);
    const epoch = c.membership !== undefined ? MEMBERSHIP_EPOCH : (c.epoch ?? 0);
    const header: CommitHeader = {
      version: COMMIT_FORMAT_VERSION,
      space: this.#spaceBytes,
      device,
      seq: c.seq,
      epoch,
      prevHash: prev ?? ZERO_HASH,
      author: identity.signingPublic,
    };
    if (c.membership !== undefined) {
      // A membership operation travels in clear: the relay reads it (names inside are sealed).
      const unsigned = unsignedCommit(header, new TextEncoder().encode(c.membership));
      return appendSignature(unsigned, await signBytes(identity.signingKey, SIGNING_LABELS.commit, unsigned));
    }
    const aad = encodeCommitHeader(header);
    const spaceKey = await this.keyOf(epoch);
    if (!spaceKey) throw new KeyUnavailable(epoch, `No key of epoch ${epoch} of space ${this.space} here.`);
    const [key, nonceKey] = await this.#keys.of(spaceKey, device, epoch);
    const plaintext = encodeCommitPlaintext(c);
    // Only a commit stored by an older version can be this large; say so, and what gets it out.
    const size = sealedBytesOfPlaintext(plaintext.length);
    if (size > MAX_COMMIT_BYTES) throw commitTooLarge(this.space, size, c.id);
    const body = await sealCommit(key, aad, plaintext, nonceKey);
    const unsigned = unsignedCommit(header, body);
    return appendSignature(unsigned, await signBytes(identity.signingKey, SIGNING_LABELS.commit, unsigned));
  }

  /** This device's keys, read once from `_meta`; a device without keys cannot seal. */
  #identity(): Promise<DeviceIdentity> {
    this.#identityRead ??= this.#dexie
      .table<{ key: string; value: unknown }>("_meta")
      .bulkGet(["device", "identity"])
      .then(async ([device, identity]) => {
        // A locked database keeps the keys as (encrypted) bytes: imported here.
        const keys = await identityFromStored(identity?.value);
        if (keys && keys.device === device?.value) return keys;
        subtle(); // throws InsecureContext where WebCrypto is missing, the usual reason
        throw new UnsignedDevice();
      });
    return this.#identityRead;
  }

  /**
   * Opens a sealed commit received from the relay or a peer: routing header, space, then the author's
   * signature and that the device id belongs to the author's key, then the AES-GCM tag (which covers
   * the header), then the plaintext; then the chain hash against the previous commit of the device when
   * this replica holds it (or `earlier` gives it, from the same batch). The nonce must be the synthetic
   * one, so a commit has one encoding only. Throws `ProtocolError` (malformed), `SignatureInvalid` (not
   * signed by its device), `DecryptError` (wrong key, altered bytes, another nonce, broken chain) or
   * `ValidationError` (bad plaintext). Never returns unauthenticated data.
   */
  async open(
    bytes: Uint8Array,
    earlier?: (device: DeviceId, seq: number) => Uint8Array | undefined,
  ): Promise<OpenedCommit> {
    const decoded = decodeSealedCommit(bytes);
    const { header, headerBytes, body } = decoded;
    if (!bytesEqual(header.space, this.#spaceBytes)) {
      throw new DecryptError(`A commit for another space arrived on the connection of space ${this.space}.`);
    }
    const device = toHex(header.device) as DeviceId;
    // The signature first: it needs no key, and nothing unsigned reaches AES-GCM or the decoders.
    await verifyCommitSignature(decoded);
    let commit: Commit;
    if (header.epoch === MEMBERSHIP_EPOCH) {
      commit = await this.#openMembership(body, device, header.seq, toHex(header.author));
    } else {
      const spaceKey = await this.keyOf(header.epoch);
      if (!spaceKey)
        throw new KeyUnavailable(
          header.epoch,
          `Commit ${header.seq} of device ${device} is sealed under key epoch ${header.epoch}, which this device does not hold.`,
        );
      const [key, nonceKey] = await this.#keys.of(spaceKey, header.device, header.epoch);
      const plaintext = await openCommit(key, headerBytes, body, nonceKey);
      commit = decodeCommitPlaintext(plaintext, { space: this.space, device, seq: header.seq });
      if (header.epoch !== 0) commit = { ...commit, epoch: header.epoch };
    }
    const fromBatch = header.seq === 1 ? undefined : earlier?.(device, header.seq - 1);
    const keptRow =
      header.seq === 1 || fromBatch
        ? undefined
        : await this.#dexie.table<SealedRow>("_sealed").get([this.space, device, header.seq - 1]);
    const expected =
      header.seq === 1
        ? ZERO_HASH
        : fromBatch
          ? await sha256(fromBatch)
          : keptRow
            ? await keptHash(keptRow)
            : null;
    if (expected && !bytesEqual(expected, header.prevHash)) {
      throw new ChainMismatch(
        `Commit ${commit.id} does not follow the previous commit of its device (chain hash).`,
        keptRow ? (keptRow.source ?? "tab") : undefined,
      );
    }
    return { commit, sealed: bytes.slice() };
  }

  /**
   * A membership commit's operation: canonical JSON (one encoding), for this space, by the commit's
   * own device and key, and signed by it. Anything else is a `DecryptError` (never applied).
   */
  async #openMembership(body: Uint8Array, device: DeviceId, seq: number, authorKey: string): Promise<Commit> {
    const text = membershipOpText(body);
    let ok = false;
    let op: MembershipOp | undefined;
    try {
      op = JSON.parse(text) as MembershipOp;
      ok =
        typeof op === "object" &&
        op !== null &&
        op.space === this.space &&
        op.author === device &&
        op.authorKey === authorKey &&
        canonicalJson(op) === text &&
        (await verifyOp(op));
    } catch {
      ok = false; // not JSON, or a value canonical JSON does not allow
    }
    if (!ok)
      throw new DecryptError(
        `Membership commit ${seq} of device ${device} carries an operation that is malformed, not canonical, for another space or device, or not signed by its author.`,
      );
    return markVerifiedMembership({
      id: `${this.space}.${device}.${seq}` as Commit["id"],
      space: this.space,
      device,
      seq,
      at: op!.at,
      changes: [],
      membership: text,
      membershipId: await opId(op!),
    });
  }

  /**
   * Sorts opened commits before they are applied: a commit this replica already holds (kept sealed, or
   * in its log) is a duplicate only if its sealed bytes are identical; a different commit for a held
   * (device, seq) is equivocation: the first stays, the other is left out and reported. A commit kept
   * aside earlier without its predecessor (so its chain hash was never checked) is checked now that the
   * predecessor is here; one that does not follow it is dropped (it is fetched again) and reported.
   * Returns the commits to apply, in the order given; `clashes`, when given, collects every held
   * (device, seq) another version of which arrived (those against a snapshot's kept head are left to
   * the caller to report).
   */
  async screen(
    opened: readonly OpenedCommit[],
    source: IntegritySource,
    clashes?: Clash[],
  ): Promise<OpenedCommit[]> {
    if (opened.length === 0) return [];
    const sealedT = this.#dexie.table<SealedRow>("_sealed");
    const devices = [...new Set(opened.map((o) => o.commit.device))];
    const vectors = await this.#dexie
      .table<{ seq: number }>("_vectors")
      .bulkGet(devices.map((d) => [this.space, d]));
    const held = new Map(devices.map((d, i) => [d, vectors[i]?.seq ?? 0]));
    const inBatch = new Map(opened.map((o) => [`${o.commit.device}.${o.commit.seq}`, o]));
    const dropped = new Set<OpenedCommit>();
    const gone = new Set<string>();
    const ordered = [...opened].sort((x, y) =>
      x.commit.device < y.commit.device
        ? -1
        : x.commit.device > y.commit.device
          ? 1
          : x.commit.seq - y.commit.seq,
    );
    for (const o of ordered) {
      if (dropped.has(o)) continue;
      const { device, seq } = o.commit;
      const have = gone.has(`${device}.${seq}`) ? undefined : await sealedT.get([this.space, device, seq]);
      // A compacted head (no bytes) is not compared: nothing at or below it is taken again anyway.
      let kept =
        have && !have.hash ? { bytes: have.bytes, source: have.source ?? ("tab" as const) } : undefined;
      if (!kept && seq <= held.get(device)!) {
        // Held in the log but never sealed here (an older snapshot, a direct applyCommits): sealing is
        // deterministic, so sealing it again gives the one encoding it has.
        try {
          kept = { bytes: (await this.sealedRange(device, seq, seq))[0]!, source: "tab" };
        } catch {
          kept = undefined;
        }
      }
      if (kept && !bytesEqual(kept.bytes, o.sealed)) {
        dropped.add(o);
        clashes?.push({ device, seq, keptSource: kept.source });
        // Against a snapshot's head, the caller that collects clashes judges the snapshot instead: the
        // author did not equivocate, the snapshot's publisher did not write what the relay holds.
        if (!(clashes && kept.source === "snapshot"))
          await this.#equivocation(device, seq, kept, o.sealed, source);
        continue;
      }
      if (seq < held.get(device)!) continue;
      // The next commit of the device, if it came earlier (kept aside) or in this batch, was opened
      // without this one: its chain hash is checked now.
      const hash = await sha256(o.sealed);
      const id = `${this.space}.${device}.${seq + 1}`;
      const parked =
        seq + 1 > held.get(device)! ? await sealedT.get([this.space, device, seq + 1]) : undefined;
      if (parked && !this.#follows(parked.bytes, hash)) {
        await this.#dexie.transaction("rw", [sealedT, this.#dexie.table("_pending")], async () => {
          await sealedT.delete([this.space, device, seq + 1]);
          await this.#dexie.table("_pending").delete(id);
        });
        gone.add(`${device}.${seq + 1}`);
        await this.#brokenChain(device, seq + 1, o.sealed, source, parked.bytes, parked.source ?? "tab");
      }
      const later = inBatch.get(`${device}.${seq + 1}`);
      if (later && !dropped.has(later) && !this.#follows(later.sealed, hash)) {
        dropped.add(later);
        await this.#brokenChain(device, seq + 1, o.sealed, source, later.sealed, source);
      }
    }
    return opened.filter((o) => !dropped.has(o));
  }

  /** Whether sealed commit `next` names `prevHash` as the hash of the commit before it. */
  #follows(next: Uint8Array, prevHash: Uint8Array): boolean {
    return bytesEqual(decodeSealedCommit(next).header.prevHash, prevHash);
  }

  async #brokenChain(
    device: DeviceId,
    seq: number,
    prev: Uint8Array,
    prevSource: IntegritySource,
    next: Uint8Array,
    nextSource: IntegritySource,
  ): Promise<void> {
    this.integrity.report({
      kind: "broken-chain",
      space: this.space,
      device,
      seq,
      kept: { hash: await hashOf(prev), source: prevSource },
      refused: { hash: await hashOf(next), source: nextSource },
      message: `Commit ${seq} of device ${device} in space ${this.space} does not follow commit ${seq - 1} (chain hash): it was dropped and will be fetched again.`,
    });
  }

  async #equivocation(
    device: DeviceId,
    seq: number,
    kept: { bytes: Uint8Array; source: IntegritySource },
    other: Uint8Array,
    source: IntegritySource,
  ): Promise<void> {
    this.integrity.report({
      kind: "equivocation",
      space: this.space,
      device,
      seq,
      kept: { hash: await hashOf(kept.bytes), source: kept.source },
      refused: { hash: await hashOf(other), source },
      message: `Two different commits ${seq} of device ${device} in space ${this.space} (from ${kept.source} and ${source}): the first is kept, the other refused.`,
    });
  }

  /** The kept sealed bytes of commit `seq` of `device`, and where they came from, if kept. */
  async kept(
    device: DeviceId,
    seq: number,
  ): Promise<{ bytes: Uint8Array; source: IntegritySource } | undefined> {
    const row = await this.#dexie.table<SealedRow>("_sealed").get([this.space, device, seq]);
    return row && !row.hash ? { bytes: row.bytes, source: row.source ?? "tab" } : undefined;
  }

  /**
   * Keeps received sealed bytes, to forward them byte-identical later. Never replaces kept bytes: a
   * different commit for a kept (device, seq) is reported as equivocation and dropped.
   */
  async keep(opened: readonly OpenedCommit[], source: IntegritySource): Promise<void> {
    if (opened.length === 0) return;
    const sealedT = this.#dexie.table<SealedRow>("_sealed");
    const clashes = await this.#dexie.transaction("rw", sealedT, async () => {
      const have = await sealedT.bulkGet(opened.map((o) => [this.space, o.commit.device, o.commit.seq]));
      const fresh: SealedRow[] = [];
      const clash: { o: OpenedCommit; kept: SealedRow }[] = [];
      opened.forEach((o, i) => {
        const row = have[i];
        if (!row)
          fresh.push({
            space: this.space,
            device: o.commit.device,
            seq: o.commit.seq,
            bytes: o.sealed,
            source,
          });
        else if (!row.hash && !bytesEqual(row.bytes, o.sealed)) clash.push({ o, kept: row });
      });
      await sealedT.bulkPut(fresh);
      return clash;
    });
    for (const { o, kept } of clashes)
      await this.#equivocation(
        o.commit.device,
        o.commit.seq,
        { bytes: kept.bytes, source: kept.source ?? "tab" },
        o.sealed,
        source,
      );
  }
}
