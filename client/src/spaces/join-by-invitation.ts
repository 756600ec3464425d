import {
  AccessDenied,
  InvalidInvitation,
  UnsignedDevice,
  ValidationError,
  type AccessDeniedReason,
} from "../errors.ts";
import { identityFromSeed } from "../identity/identity-from-seed.ts";
import { openKeySet, sealName, type KeySet } from "../members/key-set.ts";
import {
  canonicalJson,
  opId,
  redemptionProof,
  verifyOp,
  type MembershipOp,
} from "../members/membership-op.ts";
import { resolveMembership } from "../members/resolve-membership.ts";
import { MEMBERSHIP_REFUSALS, type MembershipFault } from "../protocol/device-auth.ts";
import { decodeSpaceClaim } from "../protocol/space-claim.ts";
import { toHex } from "../protocol/hex.ts";
import type { Replica } from "../replica/replica.ts";
import type { MemberRow, SpaceRow } from "../replica/stored-rows.ts";
import { connectionProofs } from "./connection-proofs.ts";
import { appendMembershipOp } from "./membership-log.ts";
import { parseMemberInvite } from "./member-invite-link.ts";
import { deviceKeysOf, randomHexId } from "./member-keys.ts";
import { deriveSpaceId } from "./space-claim.ts";

/**
 * Where a joining device gets a space's membership log: the relay's invitation endpoint by default; a
 * peer or a test can answer instead (with the proofs, as subprotocol items, to check).
 */
export type LogSource = (ask: {
  space: string;
  token: string;
  device: string;
  invitation: string;
}) => Promise<MembershipOp[]>;

/** Most membership operations a joining device accepts from the relay's invitation answer. */
const MAX_OPS = 20_000;

/**
 * Joins a space by a member invitation link (PROTOCOL.md 10, "Invitations"): asks the relay for the
 * space's membership log, proving the invitation (the relay refuses a used, expired or revoked one),
 * checks every operation's signature and the log's root against the link's claim, opens the space keys
 * the invitation was sealed with, keeps the space, and writes this device's redemption as its first
 * commit there, which makes it a member with the invitation's role once it syncs (on every replica,
 * even with the inviting admin offline). `name` is how the others will see this person.
 *
 * @throws {InvalidInvitation} a malformed link, or a log that does not hold its invitation.
 * @throws {AccessDenied} the relay refused it (`reason`: `invitation-used`, `-expired`, `-revoked`, ...).
 */
export async function joinByInvitation(
  replica: Replica,
  link: string,
  relay: string | LogSource,
  name: string,
): Promise<SpaceRow> {
  const identity = replica.identity;
  if (!identity) throw new UnsignedDevice();
  const inv = parseMemberInvite(link);
  const claim = decodeSpaceClaim(inv.claim);
  if (!claim || (await deriveSpaceId(claim.creator, claim.salt)) !== inv.spaceId)
    throw new InvalidInvitation("This invitation link is damaged: its claim does not belong to its space.");
  const existing = await replica.dexie.table<SpaceRow>("_spaces").get(inv.spaceId);
  if (existing) return existing;
  const secret = await identityFromSeed(inv.secret);
  const [device, invitation] = await connectionProofs(identity, { id: inv.spaceId, invitation: inv.secret });
  const ops =
    typeof relay === "string"
      ? await fetchLog(relay, inv.spaceId, inv.token, device!, invitation!)
      : await relay({ space: inv.spaceId, token: inv.token, device: device!, invitation: invitation! });
  const byId = new Map<string, MembershipOp>();
  for (const op of ops.slice(0, MAX_OPS)) {
    if (op?.space !== inv.spaceId || !(await verifyOp(op))) continue; // a forged op counts for nothing
    byId.set(await opId(op), op);
  }
  const state = resolveMembership(byId, toHex(claim.creator));
  const mine = state.invitations.get(toHex(secret.signingPublic));
  if (!mine?.keys || !mine.agreementKey)
    throw new InvalidInvitation("The space's members have no record of this invitation. Ask for a new link.");
  // What the log already says about it (the relay checks too; a peer or file may not): a redemption
  // that cannot count would leave this device holding keys it may not use.
  const refusal: AccessDeniedReason | undefined = mine.revoked
    ? "invitation-revoked"
    : Date.now() > mine.expires
      ? "invitation-expired"
      : mine.redeemedBy.length >= mine.uses && !mine.redeemedBy.includes(identity.device)
        ? "invitation-used"
        : undefined;
  if (refusal) throw new AccessDenied(refusalMessage(refusal, ""), refusal);
  let keys: KeySet;
  try {
    keys = await openKeySet(mine.keys, secret.agreementKey, secret.agreementPublic);
  } catch {
    throw new InvalidInvitation("This invitation's keys do not open with its link. Ask for a new link.");
  }
  const first = keys.get(0);
  if (!first) throw new InvalidInvitation("This invitation carries no key of the space. Ask for a new link.");
  const epoch = [...state.rotations].reverse().find((r) => keys.has(r.epoch))?.epoch ?? 0;
  const row: SpaceRow = {
    id: inv.spaceId,
    name: inv.name ?? "Shared space",
    key: first,
    createdAt: Date.now(),
    private: false,
    claim: inv.claim,
    epochKeys: Object.fromEntries([...keys].filter(([e]) => e !== 0)),
    epoch,
    invitation: inv.secret,
    // A reader's link: refused locally from the first write (`NotPermitted`), not only once a remote
    // membership commit arrives and `absorbMembership` runs; a write accepted here would be refused by
    // every other replica and the relay, and sit pending forever (convergence fuzzer, members mode).
    ...(mine.role === "reader" && { readOnly: "reader" as const }),
  };
  const rows: MemberRow[] = [...byId].map(([id, op]) => ({ space: inv.spaceId, id, op: canonicalJson(op) }));
  await replica.addSpace(row);
  await replica.dexie.table<MemberRow>("_members").bulkPut(rows);
  const person = mine.person ?? randomHexId();
  await appendMembershipOp(replica, inv.spaceId, {
    kind: "redeem",
    invitation: toHex(secret.signingPublic),
    person,
    name: await sealName(mine.person ? "" : name, keys, epoch, inv.spaceId),
    device: deviceKeysOf(identity),
    proof: await redemptionProof(secret.signingKey, inv.spaceId, identity.device),
  });
  return row;
}

/** The relay's `POST /sync/<space>/invitation` answer: the space's membership log. */
async function fetchLog(
  relay: string,
  space: string,
  token: string,
  device: string,
  invitation: string,
): Promise<MembershipOp[]> {
  const base = relay.replace(/^ws/, "http").replace(/\/+$/, "");
  const strip = (item: string) => item.slice(item.indexOf(".") + 1);
  let res: Response;
  try {
    res = await globalThis.fetch(`${base}/sync/${space}/invitation`, {
      method: "POST",
      body: `${token}.${strip(device)}.${strip(invitation)}`,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ValidationError(
      `The relay at ${base} cannot be reached to redeem the invitation: ${String(e)}`,
    );
  }
  if (res.status === 401 || res.status === 403) {
    const text = await res.text().catch(() => "");
    const fault = (Object.entries(MEMBERSHIP_REFUSALS) as [MembershipFault, string][]).find(([, t]) =>
      text.includes(t),
    )?.[0];
    const reason: AccessDeniedReason = !fault ? "token" : fault === "device-auth" ? "not-member" : fault;
    throw new AccessDenied(refusalMessage(reason, text), reason);
  }
  if (!res.ok) throw new ValidationError(`The relay could not look up the invitation (HTTP ${res.status}).`);
  const body = (await res.json()) as { ops?: unknown };
  if (!Array.isArray(body?.ops))
    throw new ValidationError("The relay's answer about the invitation is malformed.");
  return body.ops as MembershipOp[];
}

function refusalMessage(reason: AccessDeniedReason, text: string): string {
  switch (reason) {
    case "invitation-used":
      return "This invitation was already used. Ask the person who sent it for a new one.";
    case "invitation-expired":
      return "This invitation has expired. Ask the person who sent it for a new one.";
    case "invitation-revoked":
      return "This invitation was withdrawn. Ask an admin of the space for a new one.";
    case "invitation-unknown":
      return "The relay does not know this invitation (yet): the person who made it may not have synced. Try again later.";
    default:
      return `The relay refused the invitation: ${text || "access denied"}`;
  }
}
