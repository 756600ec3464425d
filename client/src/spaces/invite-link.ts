import { InvalidInvitation, ValidationError } from "../errors.ts";
import { base64urlToBytes, bytesToBase64url } from "../crypto/base64url.ts";
import { concatBytes } from "../crypto/bytes.ts";
import { crc32 } from "../crypto/crc32.ts";
import { bytesToHex, hexToBytes } from "../crypto/hex.ts";
import type { SpaceId } from "../types.ts";

/** What an invitation link carries: enough to join a space and read it. */
export interface Invitation {
  /** The space's id, 32 lowercase hex characters. */
  spaceId: SpaceId;
  /** The space's 32-byte key. */
  key: Uint8Array;
  /** A display name suggested by whoever made the link. Unauthenticated: show it as a hint only. */
  name?: string;
}

/** Longest space name a link may carry, in UTF-16 units, so a link stays short enough to paste. */
export const MAX_INVITE_NAME_LENGTH = 200;

const SPACE_ID = /^[0-9a-fA-F]{32}$/;

/**
 * Makes an invitation link: `<base>#join=<spaceId>.<key>.<check>[&name=<name>]`, where `spaceId` is 32
 * hex characters, `key` the 32-byte space key in unpadded base64url (43 characters), `check` the CRC-32
 * of spaceId bytes || key bytes as 4 big-endian bytes in base64url (6 characters), and `name`
 * `encodeURIComponent`-encoded.
 *
 * Everything sits in the URL fragment, which browsers never send to a server, so the key does not reach
 * the app's host, its logs or a `Referer` header. Any fragment already on `base` is dropped. The check lets
 * `parseInviteLink` reject a mistyped or truncated key on the spot instead of joining with a key that
 * will fail on every commit; CRC-32 catches every single-character change and every swap of two
 * neighbouring characters with certainty. The name is not covered by the check.
 *
 * @throws {ValidationError} on a space id that is not 32 hex characters, a key that is not 32 bytes, or a
 *   name longer than `MAX_INVITE_NAME_LENGTH`.
 * @example
 * formatInviteLink("https://clinic.example/app", { id: space.id, key: space.key, name: "North Clinic" });
 * // "https://clinic.example/app#join=3f2a…9c.q8V…Zk.fT0x…&name=North%20Clinic"
 */
export function formatInviteLink(
  base: string,
  space: { id: string; key: Uint8Array; name?: string },
): string {
  if (!SPACE_ID.test(space.id)) throw new ValidationError("A space id must be 32 hex characters.");
  if (!(space.key instanceof Uint8Array) || space.key.length !== 32) {
    throw new ValidationError("A space key must be 32 bytes.");
  }
  if (space.name !== undefined && space.name.length > MAX_INVITE_NAME_LENGTH) {
    throw new ValidationError(`A space name in a link may be at most ${MAX_INVITE_NAME_LENGTH} characters.`);
  }
  const id = space.id.toLowerCase();
  const hash = base.indexOf("#");
  const page = hash < 0 ? base : base.slice(0, hash);
  let link = `${page}#join=${id}.${bytesToBase64url(space.key)}.${checkOf(hexToBytes(id), space.key)}`;
  if (space.name) link += `&name=${encodeURIComponent(space.name)}`;
  return link;
}

/**
 * Reads an invitation link made by `formatInviteLink`. Accepts the whole URL, or only its fragment (with
 * or without the `#`); surrounding whitespace from copy and paste is ignored. Everything else must be
 * exactly as `formatInviteLink` writes it.
 *
 * @throws {InvalidInvitation} with a message for the person who pasted the link when: there is no
 *   `#join=` part; the space id is not 32 hex characters; the key is not valid base64url or not 32 bytes;
 *   the check does not match (a character was changed); anything unexpected follows.
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
  const name = parseName(params);
  if (name) invitation.name = name;
  return invitation;
}

function parseName(params: string[]): string | undefined {
  if (params.length === 0) return undefined;
  const [only] = params;
  if (params.length > 1 || only === undefined || !only.startsWith("name=")) {
    throw new InvalidInvitation(
      "This invitation link has unexpected text at its end. Copy the link again as you received it.",
    );
  }
  let name: string;
  try {
    name = decodeURIComponent(only.slice("name=".length));
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

function checkOf(id: Uint8Array, key: Uint8Array): string {
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(concatBytes(id, key)));
  return bytesToBase64url(crc);
}

function decode(text: string, what: string): Uint8Array {
  try {
    return base64urlToBytes(text);
  } catch {
    throw new InvalidInvitation(
      `This invitation link is damaged: its ${what} contains characters that do not belong there. ` +
        "Copy the link again, exactly as you received it.",
    );
  }
}
