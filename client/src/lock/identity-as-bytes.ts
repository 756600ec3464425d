import { subtle } from "../crypto/subtle.ts";
import { generateIdentity, type DeviceIdentity } from "../identity/device-identity.ts";
import type { IdentityKeeping } from "../identity/identity-keeping.ts";

/** A device identity as a locked database stores it: private keys as PKCS#8 bytes, encrypted with the row. */
interface IdentityBytes {
  device: DeviceIdentity["device"];
  signingPkcs8: Uint8Array;
  signingPublic: Uint8Array;
  agreementPkcs8: Uint8Array;
  agreementPublic: Uint8Array;
}

/**
 * How a locked database keeps its device keys: as bytes, which the at-rest middleware encrypts with the
 * rest of the `_meta` row, and never as `CryptoKey` objects. A non-extractable `CryptoKey` put in
 * IndexedDB is serialized by the browser with its raw key material (Chromium writes it into the
 * database files), which no script-level encryption could cover. Loaded, the keys are imported
 * non-extractable again, so the page holds them as before.
 */
export const IDENTITY_AS_BYTES: IdentityKeeping = {
  async fresh() {
    let identity: DeviceIdentity;
    try {
      identity = await generateIdentity(true);
    } catch {
      return undefined;
    }
    const s = subtle();
    const [signingPkcs8, agreementPkcs8] = await Promise.all([
      s.exportKey("pkcs8", identity.signingKey).then((b) => new Uint8Array(b)),
      s.exportKey("pkcs8", identity.agreementKey).then((b) => new Uint8Array(b)),
    ]);
    const stored: IdentityBytes = {
      device: identity.device,
      signingPkcs8,
      signingPublic: identity.signingPublic,
      agreementPkcs8,
      agreementPublic: identity.agreementPublic,
    };
    // The page keeps non-extractable keys, like an unlocked database's.
    return { identity: await load(stored), stored };
  },
  load: (stored) => load(stored as IdentityBytes),
};

async function load(stored: IdentityBytes): Promise<DeviceIdentity> {
  const s = subtle();
  const [signingKey, agreementKey] = await Promise.all([
    s.importKey("pkcs8", stored.signingPkcs8.slice(), { name: "Ed25519" }, false, ["sign"]),
    s.importKey("pkcs8", stored.agreementPkcs8.slice(), { name: "X25519" }, false, ["deriveBits"]),
  ]);
  return {
    device: stored.device,
    signingKey,
    signingPublic: stored.signingPublic,
    agreementKey,
    agreementPublic: stored.agreementPublic,
  };
}

/**
 * The identity a `_meta` "identity" value holds, in either form: `CryptoKey`s (a database without a
 * lock) or the bytes a locked database keeps. For code that reads it from the table (the sealer).
 *
 * @example
 * const identity = await identityFromStored((await meta.get("identity"))?.value);
 */
export async function identityFromStored(value: unknown): Promise<DeviceIdentity | undefined> {
  if (!value || typeof value !== "object") return undefined;
  return "signingPkcs8" in value ? load(value as IdentityBytes) : (value as DeviceIdentity);
}
