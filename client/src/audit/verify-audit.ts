import { openCommit } from "../crypto/seal.ts";
import { sha256 } from "../crypto/sha256.ts";
import { canonicalJson, opId, verifyOp, type MembershipOp } from "../members/membership-op.ts";
import { resolveMembership, type MembershipState } from "../members/resolve-membership.ts";
import { decodeSealedCommit, type DecodedSealedCommit } from "../protocol/sealed-commit.ts";
import { MEMBERSHIP_EPOCH, membershipOpText } from "../protocol/membership-commit.ts";
import { spaceIdPreimage } from "../protocol/space-claim.ts";
import { bytesEqual, fromHex, toHex } from "../protocol/hex.ts";
import { decodeCommitPlaintext } from "../sealing/commit-codec.ts";
import { verifyCommitSignature } from "../sealing/commit-signature.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { importDeviceKeys, openNameWith } from "./audit-keys.ts";
import { deriveEvents, type AuditEvent, type AuditScope, type OpenedAuditCommit } from "./audit-events.ts";
import { readAuditFile, type AuditFinding } from "./audit-file.ts";

/** What `verifyAudit` found. */
export interface AuditReport {
  /** True only when every check passed: no finding at all. */
  readonly intact: boolean;
  /** Every problem, each with where it is in the file. */
  readonly findings: readonly AuditFinding[];
  /** The events re-derived from the signed commits (what the summaries must say). */
  readonly events: readonly AuditEvent[];
  readonly space?: string;
  readonly scope?: AuditScope;
  /** Commits checked (signature, chain, role) and membership operations verified. */
  readonly counts: { readonly commits: number; readonly membership: number; readonly opened: number };
}

const ZERO_HASH = new Uint8Array(32);
const PREV_HASH_AT = 45;

function parseScope(text: string | undefined, space: string | undefined): AuditScope | string {
  if (text === undefined) return "the scope section could not be read";
  let s: AuditScope;
  try {
    s = JSON.parse(text) as AuditScope;
  } catch {
    return "the scope is not JSON";
  }
  const nullableInt = (v: unknown) => v === null || Number.isSafeInteger(v);
  const hexOrNull = (v: unknown, n: number) =>
    v === null || (typeof v === "string" && new RegExp(`^[0-9a-f]{${n}}$`).test(v));
  if (
    typeof s !== "object" ||
    s === null ||
    s.v !== 1 ||
    s.space !== space ||
    !hexOrNull(s.creatorKey, 64) ||
    !hexOrNull(s.salt, 32) ||
    (s.creatorKey === null) !== (s.salt === null) ||
    !nullableInt(s.from) ||
    !nullableInt(s.to) ||
    !Number.isSafeInteger(s.exportedAt) ||
    typeof s.exportedBy !== "string" ||
    !(s.records === null || (Array.isArray(s.records) && s.records.every((r) => typeof r === "string")))
  )
    return "the scope's fields are not what format 1 says";
  if (canonicalJson(s) !== text) return "the scope is not canonical JSON";
  return s;
}

/**
 * Checks an audit file (PROTOCOL.md 11) completely, with no device and no network: the file, header
 * and section hashes; every commit's signature and author binding; every chain link within each run
 * the file declares, and that the runs hold exactly the commits carried; every membership operation's
 * signature and binding, and the log's completeness; the space id against its creator's key; every
 * data commit opened with the file's keys (AES-GCM tag and synthetic nonce, so the plaintext is the
 * one that was signed); each commit's author allowed by the membership log; and the summaries
 * re-derived from the opened commits, byte for byte. Never throws: every problem is a finding with its
 * place.
 *
 * @example
 * const report = await verifyAudit(await readFile("clinic.audit"));
 * if (!report.intact) for (const f of report.findings) console.log(f.where, f.offset, f.message);
 */
export async function verifyAudit(bytes: Uint8Array): Promise<AuditReport> {
  const counts = { commits: 0, membership: 0, opened: 0 };
  try {
    return await verify(bytes, counts);
  } catch (e) {
    return {
      intact: false,
      findings: [
        { where: "file", message: `verification stopped: ${e instanceof Error ? e.message : String(e)}` },
      ],
      events: [],
      counts,
    };
  }
}

async function verify(
  bytes: Uint8Array,
  counts: { commits: number; membership: number; opened: number },
): Promise<AuditReport> {
  const read = await readAuditFile(bytes);
  const findings: AuditFinding[] = [...read.findings];
  const fail = (where: string, message: string, offset?: number) =>
    findings.push({ where, message, ...(offset !== undefined && { offset }) });
  const scopeOrWhy = parseScope(read.scopeText, read.space);
  const scope = typeof scopeOrWhy === "string" ? undefined : scopeOrWhy;
  if (typeof scopeOrWhy === "string") fail("scope", scopeOrWhy, read.scopeOffset);
  if (scope?.creatorKey && scope.salt && read.space) {
    const id = (
      await sha256(spaceIdPreimage(fromHex(scope.creatorKey, 32), fromHex(scope.salt, 16)))
    ).subarray(0, 16);
    if (toHex(id) !== read.space)
      fail(
        "scope",
        "the creator key and salt do not derive the space id: the log cannot be tied to the space",
        read.scopeOffset,
      );
  }

  // Every commit: structure, space, signature; then the runs and the chain links within them.
  const decoded: { offset: number; bytes: Uint8Array; d: DecodedSealedCommit; name: string }[] = [];
  for (const c of read.commits ?? []) {
    let d: DecodedSealedCommit;
    try {
      d = decodeSealedCommit(c.bytes);
    } catch (e) {
      fail("commits", `the commit at offset ${c.offset} does not decode: ${(e as Error).message}`, c.offset);
      continue;
    }
    const name = `commit ${toHex(d.header.device)}.${d.header.seq}`;
    counts.commits++;
    if (read.space && toHex(d.header.space) !== read.space) fail(name, "is of another space", c.offset + 1);
    try {
      await verifyCommitSignature(d);
    } catch (e) {
      fail(name, `${(e as Error).message} (bytes ${c.offset} to ${c.offset + c.bytes.length - 1})`, c.offset);
      continue;
    }
    decoded.push({ offset: c.offset, bytes: c.bytes, d, name });
  }
  const bySlot = new Map<string, (typeof decoded)[number]>();
  for (const x of decoded) {
    const key = `${toHex(x.d.header.device)}.${x.d.header.seq}`;
    if (bySlot.has(key)) fail(x.name, "appears twice", x.offset);
    bySlot.set(key, x);
  }
  let index = 0;
  const all = read.commits ?? [];
  for (const run of read.runs ?? []) {
    // A damaged run bound (a flipped high byte of `to`) must not make the check walk 2^48 seqs.
    if (run.to < run.from || run.from < 1 || run.to - run.from + 1 > all.length - index) {
      fail("commits", `the run ${run.device} ${run.from}..${run.to} is not a range of the commits carried`);
      break;
    }
    let prev: Uint8Array | undefined;
    for (let seq = run.from; seq <= run.to; seq++, index++) {
      const carried = all[index];
      const x = bySlot.get(`${run.device}.${seq}`);
      if (!x || carried?.offset !== x.offset) {
        fail(
          "commits",
          `the run ${run.device} ${run.from}..${run.to} lacks commit ${seq} where the file should hold it`,
          carried?.offset,
        );
        prev = undefined;
        continue;
      }
      const link = x.d.header.prevHash;
      const expected = seq === 1 ? ZERO_HASH : prev ? await sha256(prev) : undefined;
      if (expected && !bytesEqual(link, expected))
        fail(
          x.name,
          `breaks its device's chain: its previous-commit hash (offset ${x.offset + PREV_HASH_AT}) is not the SHA-256 of commit ${seq - 1}`,
          x.offset + PREV_HASH_AT,
        );
      prev = x.bytes;
    }
  }
  if (read.commits && read.runs && index !== all.length)
    fail("commits", `the file carries ${all.length} commits, its runs declare ${index}`);

  // The membership log: every operation verified and bound to its commit, then resolved.
  const ops = new Map<string, MembershipOp>();
  const opened: OpenedAuditCommit[] = [];
  for (const x of decoded) {
    if (x.d.header.epoch !== MEMBERSHIP_EPOCH) continue;
    const device = toHex(x.d.header.device);
    counts.membership++;
    try {
      const text = membershipOpText(x.d.body);
      const op = JSON.parse(text) as MembershipOp;
      const ok =
        op?.space === read.space &&
        op.author === device &&
        op.authorKey === toHex(x.d.header.author) &&
        canonicalJson(op) === text &&
        (await verifyOp(op));
      if (!ok)
        throw new Error("its operation is not signed by its author, not canonical, or not of this space");
      const id = await opId(op);
      ops.set(id, op);
      opened.push({ device, seq: x.d.header.seq, op: { id, op } });
    } catch (e) {
      fail(x.name, `membership commit does not verify: ${(e as Error).message}`, x.offset);
    }
  }
  let state: MembershipState | undefined;
  if (ops.size > 0) {
    if (!scope?.creatorKey)
      fail("scope", "the space has a membership log but the scope names no creator key");
    else {
      state = resolveMembership(ops, scope.creatorKey);
      if (state.order.length === 0)
        fail("commits", "the membership log has no valid root (create by the space's creator)");
      for (const id of state.waiting)
        fail(
          "commits",
          `membership operation ${id.slice(0, 16)} waits for operations the file does not carry: the log is incomplete`,
        );
    }
  }

  // Data commits: opened with the file's keys (tag and synthetic nonce), then judged by the log.
  const keys = new Map<string, Promise<{ key: CryptoKey; nonceKey: CryptoKey }>>();
  for (const k of read.deviceKeys ?? []) keys.set(`${k.device}/${k.epoch}`, importDeviceKeys(k));
  for (const x of decoded) {
    const h = x.d.header;
    if (h.epoch === MEMBERSHIP_EPOCH) continue;
    const device = toHex(h.device);
    const k = keys.get(`${device}/${h.epoch}`);
    if (!k) {
      fail(x.name, `the file has no key for device ${device} epoch ${h.epoch}`, x.offset);
      continue;
    }
    let plaintext: Uint8Array;
    try {
      const { key, nonceKey } = await k;
      plaintext = await openCommit(key, x.d.headerBytes, x.d.body, nonceKey);
    } catch {
      fail(
        x.name,
        `does not open with the file's key (AES-GCM tag or synthetic nonce): its body (bytes ${x.offset + 113} to ${x.offset + x.bytes.length - 65}) or the keys section was altered`,
        x.offset + 113,
      );
      continue;
    }
    const commit = decodeCommitPlaintext(plaintext, {
      space: read.space as SpaceId,
      device: device as DeviceId,
      seq: h.seq,
    });
    counts.opened++;
    if (commit.defect)
      fail(
        x.name,
        `is authentic but its content is malformed (${commit.defect.message}); replicas quarantine it`,
        x.offset,
      );
    opened.push({ device, seq: h.seq, commit });
  }

  // Names, for people reading the summaries.
  const names = new Map<string, string>();
  for (const [person, sealed] of state?.names ?? []) {
    const name = await openNameWith(sealed, read.nameKeys ?? new Map());
    if (name !== undefined) names.set(person, name);
  }
  const events = scope ? deriveEvents(scope, opened, state, ops, names) : [];
  for (const e of events)
    if (!e.allowed)
      fail(
        `commit ${e.commit}`,
        `written by device ${e.device.slice(0, 8)} as ${e.role}: the membership log does not allow it (role at the time: ${e.role})`,
        bySlot.get(e.commit.split("#")[0]!)?.offset,
      );

  // The summaries must be exactly what the signed commits say.
  const derived = canonicalJson(events);
  if (read.summariesText !== undefined && derived !== read.summariesText) {
    let i = 0;
    while (i < derived.length && derived[i] === read.summariesText[i]) i++;
    const at = (read.summariesOffset ?? 0) + new TextEncoder().encode(read.summariesText.slice(0, i)).length;
    fail(
      "summaries",
      `the summaries differ from what the signed commits say, from byte ${at} on (near ${JSON.stringify(read.summariesText.slice(Math.max(0, i - 20), i + 20))})`,
      at,
    );
  }
  return {
    intact: findings.length === 0,
    findings,
    events,
    ...(read.space && { space: read.space }),
    ...(scope && { scope }),
    counts,
  };
}
