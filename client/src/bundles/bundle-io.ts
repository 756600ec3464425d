import { byMembership } from "../sealing/by-membership.ts";
import type { Dexie } from "dexie";
import { InvalidBundle, NotFound, ShoalError } from "../errors.ts";
import type { ApplyReport } from "../replica/apply-remote.ts";
import type { Commit } from "../replica/commit.ts";
import type { SpaceRow, VectorRow } from "../replica/stored-rows.ts";
import type { CommitId, DeviceId, SpaceId, VersionVector } from "../types.ts";
import { MAX_BUNDLE_BYTES, decodeBundle, encodeBundle, type BundleRange } from "./bundle.ts";
import { SpaceSealer, type OpenedCommit } from "../sealing/sealer.ts";

/** The database operations bundles need: the database itself provides them. */
export interface BundleDatabase {
  /** Where the spaces (and their keys) and the sealed commits are stored. */
  readonly replica: { readonly dexie: Dexie };
  vector(spaces?: readonly SpaceId[]): Promise<VersionVector>;
  exportCommits(since: VersionVector, options?: { spaces?: readonly SpaceId[] }): Promise<Commit[]>;
  applyCommits(commits: readonly Commit[], from?: string): Promise<ApplyReport>;
}

/** Options of `exportBundle`. */
export interface ExportBundleOptions {
  /** The space to export (a space of this device). */
  space: SpaceId | { readonly id: SpaceId };
  /**
   * The receiver's version vector (from `db.vector()` on the receiving device, an earlier bundle's
   * report, a QR code...): only what it lacks is written. Absent: the whole space.
   */
  since?: VersionVector;
}

/** What `importBundle` did. */
export interface BundleImportReport {
  /** The bundle's space. */
  readonly space: SpaceId;
  /** Commits newly applied, in the order applied. */
  readonly applied: readonly CommitId[];
  /** Commits of the bundle this device already had (all of them when a bundle is imported twice). */
  readonly duplicates: number;
  /**
   * Per device, the seqs this device still lacks to hold everything the sender held when it wrote the
   * bundle: what a truncated file lost, or what came before the bundle's `since` and never arrived.
   * Empty when this device is now at least as far as the sender was.
   */
  readonly missing: readonly BundleRange[];
  /** True when the whole file arrived and its SHA-256 matched; false for a truncated file. */
  readonly complete: boolean;
  /**
   * Commits that opened with the space's key (so are authentic) but that this replica refused, with why:
   * a bug of the device that wrote them, never damage to the file. Normally empty.
   */
  readonly rejected: readonly { id: string; error: ShoalError }[];
}

/**
 * Writes the commits of one space that a receiver at `since` lacks (or all of them) as a bundle: the
 * sealed commits exactly as the relay would carry them, in this replica's causal order so that any
 * prefix of the file (a cut transfer) is still applicable.
 *
 * @example
 * const file = await exportBundleOf(db, { space, since: await other.vector([space]) });
 */
export async function exportBundleOf(
  db: BundleDatabase,
  options: ExportBundleOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  const space = typeof options?.space === "string" ? options.space : options?.space?.id;
  const row = space ? await db.replica.dexie.table<SpaceRow>("_spaces").get(space) : undefined;
  if (!space || !row) throw new NotFound(`No space ${String(space)} on this device.`);
  const since = options.since?.[space];
  // Causal order (the order this replica appended them): never a commit before one it depends on.
  const order = await db.exportCommits(options.since ?? {}, { spaces: [space] });
  const last = new Map<DeviceId, number>();
  for (const c of order) last.set(c.device, Math.max(last.get(c.device) ?? 0, c.seq));
  // Quarantined commits hold their slots with no entry in the log: the file carries them too (from
  // their kept sealed bytes), so the receiver's vector moves past them and it refuses them itself.
  const held = (
    await db.replica.dexie.table<VectorRow>("_vectors").where("space").equals(space).toArray()
  ).filter((v) => v.seq > (since?.[v.device] ?? 0));
  const sealer = new SpaceSealer(db.replica.dexie, space, row.key);
  const sealed = new Map<DeviceId, Uint8Array[]>();
  const starts = new Map<DeviceId, number>();
  for (const v of held) {
    // What a compaction covers is no longer kept sealed here (PROTOCOL.md 12): a file starts after it.
    const from = Math.max((since?.[v.device] ?? 0) + 1, (await sealer.floorOf(v.device)) + 1);
    starts.set(v.device, from);
    if (from > v.seq) continue;
    const bytes = await sealer.sealedRange(v.device, from, v.seq).catch(async (e: unknown) => {
      // A slot quarantined without kept bytes (refused before it was sealed): up to the last applied.
      const to = last.get(v.device);
      if (to === undefined) return [];
      if (to === v.seq) throw e;
      return sealer.sealedRange(v.device, from, to);
    });
    sealed.set(v.device, bytes);
  }
  // Causal order, each device's skipped slots right before its next applied commit (nothing applied
  // depends on a quarantined commit), and its trailing ones at the end.
  const commits: Uint8Array[] = [];
  const sent = new Map<DeviceId, number>();
  const upTo = (device: DeviceId, seq: number) => {
    const from = starts.get(device) ?? (since?.[device] ?? 0) + 1;
    const bytes = sealed.get(device) ?? [];
    for (let s = sent.get(device) ?? from; s <= Math.min(seq, from + bytes.length - 1); s++) {
      commits.push(bytes[s - from]!);
      sent.set(device, s + 1);
    }
  };
  for (const c of order) upTo(c.device, c.seq);
  for (const v of held) upTo(v.device, v.seq);
  // A device's commits start after its compaction floor: the file says so in its `since`.
  const floors = [...starts].filter(([d, from]) => from - 1 > (since?.[d] ?? 0));
  const from =
    options.since || floors.length > 0
      ? { ...since, ...Object.fromEntries(floors.map(([d, f]) => [d, f - 1])) }
      : undefined;
  return encodeBundle({ space, since: from, commits });
}

/**
 * Imports a bundle: decodes it, opens and checks EVERY commit (this device's key for the space, the
 * chain hash of each device's commits) before applying any, then applies them as sync does and keeps
 * their sealed bytes to forward byte-identical later. A corrupted or foreign file throws
 * `InvalidBundle` and changes nothing; a truncated one imports its whole commits and says what is
 * missing. Importing the same file twice changes nothing the second time.
 *
 * @example
 * const report = await importBundleInto(db, await file.arrayBuffer());
 * if (!report.complete) console.warn("ask for another copy:", report.missing);
 */
export async function importBundleInto(
  db: BundleDatabase,
  input: Uint8Array | ArrayBuffer | Blob,
): Promise<BundleImportReport> {
  const bytes = await readInput(input);
  const bundle = await decodeBundle(bytes);
  const row = await db.replica.dexie.table<SpaceRow>("_spaces").get(bundle.space);
  if (!row) {
    throw new InvalidBundle(
      "unknown-space",
      `This bundle is for space ${bundle.space}, which this device has not joined: join it with an invitation link first.`,
    );
  }
  const sealer = new SpaceSealer(db.replica.dexie, bundle.space, row.key);
  // Same checks as a sync session's receive, but all-or-nothing: one commit that does not open means
  // the file is not what its sender wrote, so none of it is trusted. A commit that opens but whose
  // content is refused is authentic (a key holder wrote it): it is quarantined alone when applied and
  // the rest of the bundle goes on.
  const opened: OpenedCommit[] = [];
  const earlier = new Map<string, Uint8Array>();
  // Membership commits first, applied before the rest opens: a rotation among them brings the key the
  // later commits are sealed under (they are authentic whatever the rest of the file holds).
  const [membership, data] = byMembership(bundle.commits);
  let opsApplied: readonly CommitId[] = [];
  if (membership.length > 0) {
    const ops: OpenedCommit[] = [];
    for (const sealed of membership) {
      try {
        ops.push(await sealer.open(sealed));
      } catch (e) {
        throw new InvalidBundle(
          "unopenable",
          `A membership commit of the bundle does not verify: ${String(e)}`,
          {
            cause: e,
          },
        );
      }
    }
    const fitOps = await sealer.screen(ops, "bundle");
    await sealer.keep(fitOps, "bundle");
    opsApplied = (
      await db.applyCommits(
        fitOps.map((o) => o.commit),
        "bundle",
      )
    ).applied;
    opened.push(...ops);
  }
  for (const sealed of data) {
    let o: OpenedCommit;
    try {
      o = await sealer.open(sealed, (d, seq) => earlier.get(`${d}.${seq}`));
    } catch (e) {
      const why = e instanceof ShoalError ? e.message : String(e);
      throw new InvalidBundle(
        "unopenable",
        `A commit of the bundle does not open with this device's key for the space, or breaks its chain: ${why}`,
        {
          cause: e,
        },
      );
    }
    earlier.set(`${o.commit.device}.${o.commit.seq}`, o.sealed);
    opened.push(o);
  }
  // A commit this device holds in another version is not applied, and its kept bytes stay (equivocation).
  const fit = await sealer.screen(
    opened.filter((o) => o.commit.membership === undefined),
    "bundle",
  );
  const report = await db.applyCommits(
    fit.map((o) => o.commit),
    "bundle",
  );
  // A commit refused here opened with the space key, so it is authentic: a key holder wrote it wrong.
  // As in sync, what applied stays applied and the refused ones are reported (and quarantined).
  // Quarantined commits hold their slots: their sealed bytes are kept, to chain and forward them.
  const held = new Set<string>(report.quarantined);
  const refused = new Set(report.rejected.map((r) => r.id).filter((id) => !held.has(id)));
  await sealer.keep(
    fit.filter((o) => !refused.has(o.commit.id)),
    "bundle",
  );
  const vector = (await db.vector([bundle.space]))[bundle.space] ?? {};
  const missing: BundleRange[] = [];
  for (const r of bundle.ranges) {
    const have = vector[r.device] ?? 0;
    if (have < r.to) missing.push({ device: r.device, from: have + 1, to: r.to });
  }
  const inBundle = new Set(opened.map((o) => o.commit.id as string));
  return {
    space: bundle.space,
    applied: [...opsApplied, ...report.applied].filter((id) => inBundle.has(id)),
    duplicates: report.duplicates,
    missing,
    complete: bundle.complete,
    rejected: report.rejected,
  };
}

/** The bytes of a file however the page got it, refusing oversized ones before reading them. */
async function readInput(input: Uint8Array | ArrayBuffer | Blob): Promise<Uint8Array> {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (typeof Blob !== "undefined" && input instanceof Blob) {
    if (input.size > MAX_BUNDLE_BYTES)
      throw new InvalidBundle("too-large", `A bundle of ${input.size} bytes exceeds ${MAX_BUNDLE_BYTES}.`);
    return new Uint8Array(await input.arrayBuffer());
  }
  throw new InvalidBundle(
    "not-a-bundle",
    "importBundle needs the file's bytes (Uint8Array, ArrayBuffer or Blob).",
  );
}
