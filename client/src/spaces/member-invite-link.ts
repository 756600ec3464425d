import { base64urlToBytes, bytesToBase64url } from "../crypto/base64url.ts";
import { hexToBytes } from "../crypto/hex.ts";
import { InvalidInvitation, ValidationError } from "../errors.ts";
import { SPACE_CLAIM_BYTES } from "../protocol/space-claim.ts";
import type { SpaceId } from "../types.ts";
import { checkOf, decode, MAX_INVITE_NAME_LENGTH, parseClaim, parseName } from "./invite-link.ts";

/**
 * What a member invitation link carries (PROTOCOL.md 10, "Invitations"): never the space key. The
 * secret is an invitation's seed: its Ed25519 key proves the invitation (to the relay, and in the
 * redemption), its X25519 key opens the space keys the `invite` operation sealed to it.
 */
export interface MemberInvitation {
  spaceId: SpaceId;
  /** The invitation's 32-byte secret seed. */
  secret: Uint8Array;
  /** The relay access token of the space (base64url): relay access only, it opens nothing. */
  token: string;
  /** The space's claim: binds the space id to its creator's key, the root of its membership log. */
  claim: Uint8Array;
  /** The space's name as the inviter saw it (unauthenticated: a hint). */
  name?: string;
  /** What the link is for: joining as a new member, or a recovery file re-admitting its holder. */
  kind: "invite" | "recover";
}

const SPACE_ID = /^[0-9a-f]{32}$/;

/**
 * Makes a member invitation link: `<base>#invite=<spaceId>.<secret>.<check>&token=<token>&claim=<claim>
 * [&name=<name>]` (`#recover=` for a recovery key), everything in the fragment, which browsers never
 * send to a server. The check is the CRC-32 of the space id and secret bytes, so a mistyped link is
 * refused on the spot.
 *
 * @example
 * formatMemberInvite("https://clinic.example/app", { spaceId, secret, token, claim, name: "North Clinic", kind: "invite" });
 */
export function formatMemberInvite(base: string, inv: MemberInvitation): string {
  if (!SPACE_ID.test(inv.spaceId)) throw new ValidationError("A space id must be 32 hex characters.");
  if (inv.secret.length !== 32) throw new ValidationError("An invitation secret is 32 bytes.");
  if (inv.claim.length !== SPACE_CLAIM_BYTES)
    throw new ValidationError(`A space claim must be ${SPACE_CLAIM_BYTES} bytes.`);
  if (inv.name !== undefined && inv.name.length > MAX_INVITE_NAME_LENGTH)
    throw new ValidationError(`A space name in a link may be at most ${MAX_INVITE_NAME_LENGTH} characters.`);
  const hash = base.indexOf("#");
  const page = hash < 0 ? base : base.slice(0, hash);
  const secret = bytesToBase64url(inv.secret);
  let link = `${page}#${inv.kind}=${inv.spaceId}.${secret}.${checkOf(hexToBytes(inv.spaceId), inv.secret)}`;
  link += `&token=${inv.token}&claim=${bytesToBase64url(inv.claim)}`;
  if (inv.name) link += `&name=${encodeURIComponent(inv.name)}`;
  return link;
}

/** Whether a link (or its fragment) is a member invitation or recovery link rather than a key link. */
export function isMemberInvite(link: string): boolean {
  const text = link.trim();
  const fragment = text.includes("#") ? text.slice(text.indexOf("#") + 1) : text;
  return fragment.startsWith("invite=") || fragment.startsWith("recover=");
}

/**
 * Reads a link made by `formatMemberInvite` (the whole URL or its fragment).
 *
 * @throws {InvalidInvitation} with a message for the person who pasted it when any part is missing,
 *   damaged or unexpected.
 */
export function parseMemberInvite(link: string): MemberInvitation {
  const text = link.trim();
  const fragment = text.includes("#") ? text.slice(text.indexOf("#") + 1) : text;
  const kind = fragment.startsWith("recover=") ? "recover" : fragment.startsWith("invite=") ? "invite" : null;
  if (!kind)
    throw new InvalidInvitation("This link has no invitation in it (no '#invite='). Copy the whole link.");
  const [payload = "", ...params] = fragment.slice(kind.length + 1).split("&");
  const parts = payload.split(".");
  if (parts.length !== 3)
    throw new InvalidInvitation(
      "This invitation link is incomplete or has unexpected text in it. Copy it again.",
    );
  const [idText, secretText, checkText] = parts as [string, string, string];
  if (!SPACE_ID.test(idText))
    throw new InvalidInvitation(
      "This invitation link is damaged: its space id should be 32 characters of 0-9 and a-f.",
    );
  const secret = decode(secretText, "secret");
  if (secret.length !== 32 || checkText !== checkOf(hexToBytes(idText), secret))
    throw new InvalidInvitation(
      "This invitation link is damaged: a character was changed or lost. Copy it again, exactly as you received it.",
    );
  const values = new Map<string, string>();
  for (const p of params) {
    const eq = p.indexOf("=");
    const key = p.slice(0, eq);
    if (eq < 1 || values.has(key) || !["token", "claim", "name"].includes(key))
      throw new InvalidInvitation("This invitation link has unexpected text at its end. Copy it again.");
    values.set(key, p.slice(eq + 1));
  }
  const token = values.get("token");
  const claimText = values.get("claim");
  if (!token || !claimText)
    throw new InvalidInvitation("This invitation link is incomplete: its relay token or claim is missing.");
  if (base64urlToBytesSafe(token) === undefined)
    throw new InvalidInvitation("This invitation link is damaged: its relay token cannot be read.");
  const name = values.has("name") ? parseName(values.get("name")!) : undefined;
  return {
    spaceId: idText as SpaceId,
    secret,
    token,
    claim: parseClaim(claimText),
    kind,
    ...(name && { name }),
  };
}

function base64urlToBytesSafe(text: string): Uint8Array | undefined {
  try {
    return base64urlToBytes(text);
  } catch {
    return undefined;
  }
}
