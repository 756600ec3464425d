import { deriveCommitKey, deriveNonceKey } from "../crypto/keys.ts";
import { openCommit, sealCommit, sha256 } from "../crypto/seal.ts";
import { DecryptError, ValidationError } from "../errors.ts";
import {
  COMMIT_FORMAT_VERSION,
  MAX_COMMIT_BYTES,
  bytesEqual,
  decodeSealedCommit,
  encodeCommitHeader,
  encodeSealedCommit,
  fromHex,
  toHex,
  type CommitHeader,
} from "../protocol/index.ts";
import type { Dexie } from "dexie";
import type { Commit, StoredCommit } from "../replica/commit.ts";
import { commitTooLarge, sealedBytesOfPlaintext } from "../replica/sealed-size.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { decodeCommitPlaintext, encodeCommitPlaintext } from "./commit-codec.ts";

/** A row of `_sealed`. */
interface SealedRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
  bytes: Uint8Array;
}

/** A received sealed commit, opened and checked. */
export interface OpenedCommit {
  commit: Commit;
  sealed: Uint8Array;
}

const ZERO_HASH = new Uint8Array(32);
/** Key epoch of every commit until key rotation exists. */
export const CURRENT_EPOCH = 0;

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
  readonly #dexie: Dexie;

  constructor(dexie: Dexie, space: SpaceId, key: Uint8Array) {
    this.#dexie = dexie;
    this.space = space;
    this.#spaceBytes = fromHex(space, 16);
    this.#key = key;
  }

  /**
   * The sealed bytes of commits `from..to` of `device` (all held in the log), sealing what is not yet
   * sealed, in order, so each one's chain hash is at hand.
   */
  async sealedRange(device: DeviceId, from: number, to: number): Promise<Uint8Array[]> {
    const sealedT = this.#dexie.table<SealedRow>("_sealed");
    // One read also fetches the commit before the range, whose hash the first one to seal chains to.
    const first = Math.max(1, from - 1);
    const have = await sealedT
      .where("[space+device+seq]")
      .between([this.space, device, first], [this.space, device, to], true, true)
      .toArray();
    const bySeq = new Map(have.map((r) => [r.seq, r.bytes]));
    const inRange = have.filter((r) => r.seq >= from);
    if (inRange.length === to - from + 1) return inRange.map((r) => r.bytes);
    const commits = await this.#dexie
      .table<StoredCommit>("_commits")
      .where("[space+device+seq]")
      .between([this.space, device, from], [this.space, device, to], true, true)
      .toArray();
    if (commits.length !== to - from + 1)
      throw new ValidationError(`Commits ${from}..${to} of ${device} are not all held.`);
    let prev: Uint8Array | null =
      from > 1
        ? (bySeq.get(from - 1) ?? (await this.sealedRange(device, from - 1, from - 1))[0] ?? null)
        : null;
    const out: Uint8Array[] = [];
    const fresh: SealedRow[] = [];
    for (const c of commits) {
      let bytes = bySeq.get(c.seq);
      if (!bytes) {
        bytes = await this.#seal(c, prev);
        fresh.push({ space: this.space, device, seq: c.seq, bytes });
      }
      out.push(bytes);
      prev = bytes;
    }
    if (fresh.length > 0) await sealedT.bulkPut(fresh);
    return out;
  }

  async #seal(c: Commit, prev: Uint8Array | null): Promise<Uint8Array> {
    const device = fromHex(c.device, 16);
    const header: CommitHeader = {
      version: COMMIT_FORMAT_VERSION,
      space: this.#spaceBytes,
      device,
      seq: c.seq,
      epoch: CURRENT_EPOCH,
      prevHash: prev ? await sha256(prev) : ZERO_HASH,
    };
    const aad = encodeCommitHeader(header);
    const [key, nonceKey] = await Promise.all([
      deriveCommitKey(this.#key, device, CURRENT_EPOCH),
      deriveNonceKey(this.#key, device, CURRENT_EPOCH),
    ]);
    const plaintext = encodeCommitPlaintext(c);
    // Only a commit stored by an older version can be this large; say so, and what gets it out.
    const size = sealedBytesOfPlaintext(plaintext.length);
    if (size > MAX_COMMIT_BYTES) throw commitTooLarge(this.space, size, c.id);
    const body = await sealCommit(key, aad, plaintext, nonceKey);
    return encodeSealedCommit(header, body);
  }

  /**
   * Opens a sealed commit received from the relay or a peer: routing header, space, then the AES-GCM
   * tag (which covers the header), then the plaintext; then the chain hash against the previous commit
   * of the device when this replica holds it (or `earlier` gives it, from the same batch). Throws `ProtocolError` (malformed), `DecryptError`
   * (wrong key, altered bytes, broken chain) or `ValidationError` (bad plaintext). Never returns
   * unauthenticated data.
   */
  async open(
    bytes: Uint8Array,
    earlier?: (device: DeviceId, seq: number) => Uint8Array | undefined,
  ): Promise<OpenedCommit> {
    const { header, headerBytes, body } = decodeSealedCommit(bytes);
    if (!bytesEqual(header.space, this.#spaceBytes)) {
      throw new DecryptError(`A commit for another space arrived on the connection of space ${this.space}.`);
    }
    const device = toHex(header.device) as DeviceId;
    const key = await deriveCommitKey(this.#key, header.device, header.epoch);
    const plaintext = await openCommit(key, headerBytes, body);
    const commit = decodeCommitPlaintext(plaintext, { space: this.space, device, seq: header.seq });
    const prevBytes =
      header.seq === 1
        ? null
        : (earlier?.(device, header.seq - 1) ??
          (await this.#dexie.table<SealedRow>("_sealed").get([this.space, device, header.seq - 1]))?.bytes);
    const expected = header.seq === 1 ? ZERO_HASH : prevBytes ? await sha256(prevBytes) : null;
    if (expected && !bytesEqual(expected, header.prevHash)) {
      throw new DecryptError(
        `Commit ${commit.id} does not follow the previous commit of its device (chain hash).`,
      );
    }
    return { commit, sealed: bytes.slice() };
  }

  /** Keeps received sealed bytes, to forward them byte-identical later. */
  async keep(opened: readonly OpenedCommit[]): Promise<void> {
    if (opened.length === 0) return;
    await this.#dexie
      .table<SealedRow>("_sealed")
      .bulkPut(
        opened.map((o) => ({
          space: this.space,
          device: o.commit.device,
          seq: o.commit.seq,
          bytes: o.sealed,
        })),
      );
  }
}
