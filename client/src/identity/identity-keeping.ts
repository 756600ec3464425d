import { generateIdentityIfPossible, type DeviceIdentity } from "./device-identity.ts";

/**
 * How the device identity is stored: as the `CryptoKey` objects themselves (the default), or in another
 * form (a locked database keeps bytes that it encrypts, `lock/identity-as-bytes.ts`). `fresh` runs
 * outside any IndexedDB transaction (WebCrypto would end it); `undefined` where WebCrypto is missing.
 *
 * @example
 * const replica = await Replica.open(dexie, specs, Date.now, IDENTITY_AS_CRYPTOKEYS);
 */
export interface IdentityKeeping {
  fresh(): Promise<{ identity: DeviceIdentity; stored: unknown } | undefined>;
  load(stored: unknown): Promise<DeviceIdentity>;
}

/** The default: the `CryptoKey` objects themselves, as a database without a lock keeps them. */
export const IDENTITY_AS_CRYPTOKEYS: IdentityKeeping = {
  fresh: async () => {
    const identity = await generateIdentityIfPossible();
    return identity && { identity, stored: identity };
  },
  load: async (stored) => stored as DeviceIdentity,
};
