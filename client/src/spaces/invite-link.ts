import { InvalidInvitation, ValidationError } from "../errors.ts";
import { base64urlToBytes, bytesToBase64url } from "../crypto/base64url.ts";
import { concatBytes } from "../crypto/bytes.ts";
import { crc32 } from "../crypto/crc32.ts";
import { bytesToHex, hexToBytes } from "../crypto/hex.ts";
import { SPACE_CLAIM_BYTES } from "../protocol/space-claim.ts";
import type { SpaceId } from "../types.ts";

/** What an invitation link carries: enough to join a space and read it. */
export interface Invitation {
  /** The space's id, 32 lowercase hex characters. */
  spaceId: SpaceId;
  /** The space's 32-byte key. */
  key: Uint8Array;
  /** A display name suggested by whoever made the link. Unauthenticated: show it as a hint only. */
  name?: string;
  /**
   * The space's claim (112 bytes, PROTOCOL.md 1, "Space claims"), so this member can register the
   * space at a relay that does not know it. Absent in links made before claims existed.
   */
  claim?: Uint8Array;
}

/** Longest space name a link may carry, in UTF-16 units, so a link stays short enough to paste. */
export const MAX_INVITE_NAME_LENGTH = 200;

const SPACE_ID = /^[0-9a-fA-F]{32}$/;

/**
 * Makes an invitation link: `<base>#join=<spaceId>.<key>.<check>[&name=<name>][&claim=<claim>]`, where
 * `spaceId` is 32 hex characters, `key` the 32-byte space key in unpadded base64url (43 characters),
 * `check` the CRC-32 of spaceId bytes || key bytes as 4 big-endian bytes in base64url (6 characters),
 * `name` `encodeURIComponent`-encoded, and `claim` the space's 112-byte claim in unpadded base64url
 * (150 characters; it carries no secret, and the relay checks it, so the CRC does not cover it).
 *
 * Everything sits in the URL fragment, which browsers never send to a server, so the key does not reach
 * the app's host, its logs or a `Referer` header. Any fragment already on `base` is dropped. The check lets
 * `parseInviteLink` reject a mistyped or truncated key on the spot instead of joining with a key that
 * will fail on every commit; CRC-32 catches every single-character change and every swap of two
 * neighbouring characters with certainty. The name is not covered by the check.
 *
 * @throws {ValidationError} on a space id that is not 32 hex characters, a key that is not 32 bytes, a
 *   name longer than `MAX_INVITE_NAME_LENGTH`, or a claim that is not 112 bytes.
 * @example
 * formatInviteLink("https://clinic.example/app", { id: space.id, key: space.key, name: "North Clinic" });
 * // "https://clinic.example/app#join=3f2a…9c.q8V…Zk.fT0x…&name=North%20Clinic"
 */
export function formatInviteLink(
  base: string,
  space: { id: string; key: Uint8Array; name?: string; claim?: Uint8Array },
): string {
  if (!SPACE_ID.test(space.id)) throw new ValidationError("A space id must be 32 hex characters.");
  if (!(space.key instanceof Uint8Array) || space.key.length !== 32) {
    throw new ValidationError("A space key must be 32 bytes.");
  }
  if (space.name !== undefined && space.name.length > MAX_INVITE_NAME_LENGTH) {
    throw new ValidationError(`A space name in a link may be at most ${MAX_INVITE_NAME_LENGTH} characters.`);
  }
  if (space.claim !== undefined && space.claim.length !== SPACE_CLAIM_BYTES) {
    throw new ValidationError(`A space claim must be ${SPACE_CLAIM_BYTES} bytes.`);
  }
  const id = space.id.toLowerCase();
  const hash = base.indexOf("#");
  const page = hash < 0 ? base : base.slice(0, hash);
  let link = `${page}#join=${id}.${bytesToBase64url(space.key)}.${checkOf(hexToBytes(id), space.key)}`;
  if (space.name) link += `&name=${encodeURIComponent(space.name)}`;
  if (space.claim) link += `&claim=${bytesToBase64url(space.claim)}`;
  return link;
}

/**
 * Reads an invitation link made by `formatInviteLink`. Accepts the whole URL, or only its fragment (with
 * or without the `#`); surrounding whitespace from copy and paste is ignored. Everything else must be
 * exactly as `formatInviteLink` writes it.
 *
 * @throws {InvalidInvitation} with a message for the person who pasted the link when: there is no
 *   `#join=` part; the space id is not 32 hex characters; the key is not valid base64url or not 32 bytes;
 *   the check does not match (a character was changed); a claim is not base64url of 112 bytes; anything
 *   unexpected follows (`name=` then `claim=`, each at most once, are the only parameters).
 * @example
 * const { spaceId, key, name } = parseInviteLink(location.href);
 */
export function parseInviteLink(link: string): Invitation {
  const text = link.trim();
  const hash = text.indexOf("#");
  const fragment = hash >= 0 ? text.slice(hash + 1) : text;
  if (!fragment.startsWith("join=")) {
    throw new InvalidInvitation(
      "This link has no invitation in it: the part starting with '#join=' is missing. " +
        "Make sure you copied the whole link.",
    );
  }
  const [payload = "", ...params] = fragment.slice("join=".length).split("&");
  const parts = payload.split(".");
  if (parts.length !== 3) {
    throw new InvalidInvitation(
      parts.length < 3
        ? "This invitation link is incomplete: part of it is missing. Make sure you copied the whole link."
        : "This invitation link has unexpected text in it. Copy the link again, exactly as you received it.",
    );
  }
  const [idText, keyText, checkText] = parts as [string, string, string];
  if (!SPACE_ID.test(idText)) {
    throw new InvalidInvitation(
      "This invitation link is damaged: its space id should be 32 characters of 0-9 and a-f.",
    );
  }
  const id = hexToBytes(idText);
  const key = decode(keyText, "key");
  if (key.length !== 32) {
    throw new InvalidInvitation(
      `This invitation link is damaged: its key is ${key.length} bytes long instead of 32. ` +
        "Make sure you copied the whole link.",
    );
  }
  const check = decode(checkText, "check");
  if (check.length !== 4 || checkText !== checkOf(id, key)) {
    throw new InvalidInvitation(
      "This invitation link is damaged: its key does not match its checksum, so a character was " +
        "changed or lost. Copy the link again, exactly as you received it.",
    );
  }
  const invitation: Invitation = { spaceId: idText.toLowerCase() as SpaceId, key };
  const { name: nameParam, claim: claimParam } = splitParams(params);
  const name = nameParam === undefined ? undefined : parseName(nameParam);
  if (name) invitation.name = name;
  if (claimParam !== undefined) invitation.claim = parseClaim(claimParam);
  return invitation;
}

/** The `name=` and `claim=` parameters, in this order, each at most once; anything else is refused. */
function splitParams(params: string[]): { name?: string; claim?: string } {
  const found: { name?: string; claim?: string } = {};
  let last = -1;
  for (const param of params) {
    const at = param.startsWith("name=") ? 0 : param.startsWith("claim=") ? 1 : -1;
    if (at <= last) {
      throw new InvalidInvitation(
        "This invitation link has unexpected text at its end. Copy the link again as you received it.",
      );
    }
    last = at;
    if (at === 0) found.name = param.slice("name=".length);
    else found.claim = param.slice("claim=".length);
  }
  return found;
}

/** Reads a link's claim parameter (112 bytes). @throws {InvalidInvitation} */
export function parseClaim(text: string): Uint8Array {
  const claim = decode(text, "claim");
  if (claim.length !== SPACE_CLAIM_BYTES) {
    throw new InvalidInvitation(
      `This invitation link is damaged: its claim is ${claim.length} bytes long instead of ${SPACE_CLAIM_BYTES}. ` +
        "Make sure you copied the whole link.",
    );
  }
  return claim;
}

/** Reads a link's name parameter. @throws {InvalidInvitation} */
export function parseName(text: string): string | undefined {
  let name: string;
  try {
    name = decodeURIComponent(text);
  } catch {
    throw new InvalidInvitation("This invitation link is damaged: the space name in it cannot be read.");
  }
  if (name.length > MAX_INVITE_NAME_LENGTH) {
    throw new InvalidInvitation(
      `This invitation link's space name is longer than ${MAX_INVITE_NAME_LENGTH} characters.`,
    );
  }
  return name || undefined;
}

/** The CRC-32 check of a link's id and secret (4 bytes, base64url). */
export function checkOf(id: Uint8Array, key: Uint8Array): string {
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(concatBytes(id, key)));
  return bytesToBase64url(crc);
}

/** Decodes a base64url part of a link. @throws {InvalidInvitation} naming `what`. */
export function decode(text: string, what: string): Uint8Array {
  try {
    return base64urlToBytes(text);
  } catch {
    throw new InvalidInvitation(
      `This invitation link is damaged: its ${what} contains characters that do not belong there. ` +
        "Copy the link again, exactly as you received it.",
    );
  }
}
