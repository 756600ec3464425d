import { subtle } from "../crypto/subtle.ts";
import { deriveSignalKey } from "../crypto/keys.ts";
import { copyBytes, concatBytes } from "../crypto/bytes.ts";
import { ValidationError } from "../errors.ts";
import { randomBytes } from "../ids.ts";
import { MAX_SIGNAL_PAYLOAD_BYTES } from "../protocol/index.ts";

// Sealed signal payloads (PROTOCOL.md, "signal (0x0d)"): what devices say to each other through the
// relay to find each other and negotiate a WebRTC connection, which the relay can neither read nor
// readdress.

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** What two devices tell each other through the relay while setting up a data channel. */
export interface SignalBody {
  /** `announce`: "I am here" (broadcast, or the direct answer to one); then offer, answer, ice, bye. */
  t: "announce" | "offer" | "answer" | "ice" | "bye";
  /** The sender's signalling session: random per start, so a restarted device is told apart. */
  s: string;
  /** The negotiation an offer starts and every later signal of it names. */
  n?: string;
  sdp?: string;
  /** An ICE candidate, as `RTCIceCandidate.toJSON()` gave it. */
  c?: RTCIceCandidateInit;
}

const KINDS = new Set(["announce", "offer", "answer", "ice", "bye"]);

/** The signalling key of a space (HKDF, label "shoal/v1/signal-key"): see `crypto/keys.ts`. */
export { deriveSignalKey } from "../crypto/keys.ts";

/** The additional data of a signal's seal: space, from and to, as in bytes 2 to 49 of its frame. */
function signalAad(space: Uint8Array, from: Uint8Array, to: Uint8Array): Uint8Array<ArrayBuffer> {
  return concatBytes(space, from, to);
}

/**
 * Seals a signal body for one frame: `nonce (12) || AES-GCM(json) || tag (16)` with a random nonce and
 * the frame's space, from and to as additional data, so the relay can neither read it nor readdress it.
 *
 * @example
 * const payload = await sealSignal(key, space, me, SIGNAL_BROADCAST, { t: "announce", s: session });
 */
export async function sealSignal(
  key: CryptoKey,
  space: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
  body: SignalBody,
): Promise<Uint8Array> {
  const nonce = copyBytes(randomBytes(NONCE_BYTES));
  const plain = new TextEncoder().encode(JSON.stringify(body));
  const sealed = new Uint8Array(
    await subtle().encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: signalAad(space, from, to) },
      key,
      plain,
    ),
  );
  const payload = concatBytes(nonce, sealed);
  if (payload.length > MAX_SIGNAL_PAYLOAD_BYTES)
    throw new ValidationError(`A signal of ${payload.length} bytes is over ${MAX_SIGNAL_PAYLOAD_BYTES}.`);
  return payload;
}

/**
 * Opens a sealed signal; null when it does not open (another space's key, altered, readdressed) or is
 * not a well-formed body. Never throws: a bad signal is simply not acted on.
 *
 * @example
 * const body = await openSignal(key, m.space, m.from, m.to, m.payload);
 * if (body?.t === "offer") answer(body);
 */
export async function openSignal(
  key: CryptoKey,
  space: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
  payload: Uint8Array,
): Promise<SignalBody | null> {
  if (payload.length < NONCE_BYTES + TAG_BYTES) return null;
  let body: unknown;
  try {
    const plain = await subtle().decrypt(
      {
        name: "AES-GCM",
        iv: copyBytes(payload.subarray(0, NONCE_BYTES)),
        additionalData: signalAad(space, from, to),
      },
      key,
      copyBytes(payload.subarray(NONCE_BYTES)),
    );
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch {
    return null;
  }
  const b = body as Partial<SignalBody> | null;
  if (!b || typeof b !== "object" || !KINDS.has(b.t as string) || typeof b.s !== "string") return null;
  if (b.n !== undefined && typeof b.n !== "string") return null;
  if (b.sdp !== undefined && typeof b.sdp !== "string") return null;
  if (b.c !== undefined && (typeof b.c !== "object" || b.c === null)) return null;
  if ((b.t === "offer" || b.t === "answer") && (typeof b.sdp !== "string" || typeof b.n !== "string"))
    return null;
  if (b.t === "ice" && (typeof b.n !== "string" || !b.c)) return null;
  return b as SignalBody;
}
