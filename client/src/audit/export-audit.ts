import { exportBundleOf, type BundleDatabase } from "../bundles/bundle-io.ts";
import { decodeBundle } from "../bundles/bundle.ts";
import { SpaceSealer } from "../sealing/sealer.ts";
import { openCommit } from "../crypto/seal.ts";
import { NotFound, ValidationError } from "../errors.ts";
import type { MembershipOp } from "../members/membership-op.ts";
import { canonicalJson } from "../members/membership-op.ts";
import { MEMBERSHIP_EPOCH, membershipOpText } from "../protocol/membership-commit.ts";
import { decodeSealedCommit } from "../protocol/sealed-commit.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import type { SpaceRow, VectorRow } from "../replica/stored-rows.ts";
import { decodeCommitPlaintext } from "../sealing/commit-codec.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { deviceEpochKeys, importDeviceKeys, nameKeyBytes, sealedNameEpoch } from "./audit-keys.ts";
import { AUDIT_VIEWS_COLLECTION, inScope, type AuditScope } from "./audit-events.ts";
import { encodeAuditFile, type AuditDeviceKeys, type AuditRun } from "./audit-file.ts";
import { verifyAudit } from "./verify-audit.ts";

/** Options of `exportAudit`. */
export interface ExportAuditOptions {
  /** Earliest claimed time to summarize (inclusive). */
  from?: Date | number;
  /** Latest claimed time to summarize (inclusive). */
  to?: Date | number;
  /** Only changes to (and views of) these records. */
  records?: readonly string[];
}

const ms = (v: Date | number | undefined): number | null =>
  v === undefined ? null : typeof v === "number" ? v : v.getTime();

/**
 * Writes an audit file of one space (PROTOCOL.md 11): the signed sealed commits of the scope, each
 * device's as one unbroken chain from its first to its last commit in scope; the whole membership log;
 * the commit and nonce keys of exactly the (device, epoch) pairs carried and the name keys the log's
 * names need (never a space key); and the change summaries, derived from the commits by the code the
 * verifier runs. The file is for an auditor trusted with the content it carries.
 *
 * @example
 * const file = await exportAuditOf(db, space.id, { from: new Date("2026-01-01") });
 */
export async function exportAuditOf(
  db: BundleDatabase & { readonly deviceId: DeviceId },
  space: SpaceId,
  options: ExportAuditOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const row = await db.replica.dexie.table<SpaceRow>("_spaces").get(space);
  if (!row) throw new NotFound(`No space ${String(space)} on this device.`);
  const from = ms(options.from);
  const to = ms(options.to);
  if ((from !== null && !Number.isSafeInteger(from)) || (to !== null && !Number.isSafeInteger(to)))
    throw new ValidationError("exportAudit: from and to must be dates or integer milliseconds.");
  const scope: AuditScope = {
    v: 1,
    space,
    creatorKey: row.claim ? toHex(row.claim.subarray(0, 32)) : null,
    salt: row.claim ? toHex(row.claim.subarray(32, 48)) : null,
    from,
    to,
    records: options.records ? [...new Set(options.records.map(String))].sort() : null,
    exportedBy: db.deviceId,
    exportedAt: Date.now(),
  };
  const keyOf = (epoch: number) => (epoch === 0 ? row.key : row.epochKeys?.[epoch]);
  // After a compaction (PROTOCOL.md 12) the file holds what is kept: the commits after its floor, and
  // the whole log (membership commits are kept below the floor too).
  const sealer = new SpaceSealer(db.replica.dexie, space, row.key);
  const below: Uint8Array[] = [];
  for (const v of await db.replica.dexie.table<VectorRow>("_vectors").where("space").equals(space).toArray())
    below.push(...(await sealer.keptMembership(v.device)));
  const all = [...below, ...(await decodeBundle(await exportBundleOf(db, { space }))).commits];
  const spaceBytes = fromHex(space, 16);

  // Which data commits the scope covers: open each with its device's keys.
  const keys = new Map<string, AuditDeviceKeys>();
  const imported = new Map<string, { key: CryptoKey; nonceKey: CryptoKey }>();
  const spans = new Map<string, { from: number; to: number }>();
  const include = new Map<string, Uint8Array>();
  const nameEpochs = new Set<number>();
  for (const bytes of all) {
    const d = decodeSealedCommit(bytes);
    const device = toHex(d.header.device);
    const slot = `${device}.${d.header.seq}`;
    if (d.header.epoch === MEMBERSHIP_EPOCH) {
      include.set(slot, bytes);
      const a = (JSON.parse(membershipOpText(d.body)) as MembershipOp).action as { name?: unknown };
      const epoch = sealedNameEpoch(a.name);
      if (epoch !== undefined) nameEpochs.add(epoch);
      continue;
    }
    const spaceKey = keyOf(d.header.epoch);
    if (!spaceKey) continue;
    const id = `${device}/${d.header.epoch}`;
    if (!keys.has(id))
      keys.set(id, {
        device,
        epoch: d.header.epoch,
        ...(await deviceEpochKeys(spaceKey, d.header.device, d.header.epoch)),
      });
    if (!imported.has(id)) imported.set(id, await importDeviceKeys(keys.get(id)!));
    const { key, nonceKey } = imported.get(id)!;
    const commit = decodeCommitPlaintext(await openCommit(key, d.headerBytes, d.body, nonceKey), {
      space,
      device: device as DeviceId,
      seq: d.header.seq,
    });
    const touched = commit.changes.map((c) => {
      const json = c.create?.json as { record?: unknown } | undefined;
      return c.collection === AUDIT_VIEWS_COLLECTION && typeof json?.record === "string"
        ? json.record
        : c.record;
    });
    if (commit.defect || !inScope(scope, commit.at, touched)) continue;
    const span = spans.get(device);
    spans.set(device, {
      from: Math.min(span?.from ?? d.header.seq, d.header.seq),
      to: Math.max(span?.to ?? d.header.seq, d.header.seq),
    });
  }
  // Each device's commits from its first to its last in scope, unbroken, so every link can be checked.
  for (const bytes of all) {
    const d = decodeSealedCommit(bytes);
    const device = toHex(d.header.device);
    const span = spans.get(device);
    if (span && d.header.seq >= span.from && d.header.seq <= span.to)
      include.set(`${device}.${d.header.seq}`, bytes);
  }
  const slots = [...include.keys()]
    .map((s) => {
      const [device, seq] = s.split(".");
      return { device: device!, seq: Number(seq) };
    })
    .sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq - b.seq));
  const runs: AuditRun[] = [];
  for (const s of slots) {
    const last = runs.at(-1);
    if (last && last.device === s.device && last.to === s.seq - 1)
      runs[runs.length - 1] = { ...last, to: s.seq };
    else runs.push({ device: s.device, from: s.seq, to: s.seq });
  }
  const commits = slots.map((s) => include.get(`${s.device}.${s.seq}`)!);
  const carried = new Set(
    commits.map((b) => decodeSealedCommit(b).header).map((h) => `${toHex(h.device)}/${h.epoch}`),
  );
  const deviceKeys = [...keys.entries()]
    .filter(([id]) => carried.has(id))
    .map(([, k]) => k)
    .sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.epoch - b.epoch));
  const nameKeys = new Map<number, Uint8Array>();
  for (const epoch of nameEpochs) {
    const k = keyOf(epoch);
    if (k) nameKeys.set(epoch, await nameKeyBytes(k, spaceBytes));
  }
  const contents = { space, scope: canonicalJson(scope), runs, commits, deviceKeys, nameKeys };
  // The summaries are what the verifier derives from the rest of the file: the same code, so they match.
  const draft = await encodeAuditFile({ ...contents, summaries: "[]" });
  const { events } = await verifyAudit(draft);
  return encodeAuditFile({ ...contents, summaries: canonicalJson(events) });
}
