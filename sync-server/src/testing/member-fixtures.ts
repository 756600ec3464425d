import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import {
  canonicalJson,
  deviceAuthSigned,
  encodeDeviceAuth,
  encodeInvitationProof,
  fromHex,
  MEMBERSHIP_EPOCH,
  opId,
  toHex,
  type DeviceKeys,
  type MembershipAction,
  type MembershipOp,
} from "@shoal/client/protocol";
import { identityFromSeed, signingKeyFromSeed } from "../../../client/src/identity/identity-from-seed.ts";
import type { DeviceIdentity } from "../../../client/src/identity/device-identity.ts";
import { SIGNING_LABELS, signBytes } from "../../../client/src/identity/signing.ts";
import { redemptionProof, signOp } from "../../../client/src/members/membership-op.ts";
import { makeChain, registerTestDevice, sha256 } from "../store/commit-fixtures.ts";

/** A test device whose one seed gives both its WebCrypto identity (to sign operations) and node keys. */
export interface TestMember {
  identity: DeviceIdentity;
  /** Device id, hex. */
  device: string;
  /** Its keys as the membership log names them. */
  keys: DeviceKeys;
  /** Raw signing key and node private key: what `claimedSpace` takes to make this device the creator. */
  node: { creator: Uint8Array; privateKey: KeyObject };
}

// PKCS #8 of a raw Ed25519 seed (RFC 8410): a fixed DER prefix, then the 32 bytes.
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/**
 * Test support: a device from a random seed, known to `makeChain` so its commits are signed by the key
 * its operations name.
 *
 * @example
 * const alice = await testMember();
 * const { space, token } = claimedSpace(undefined, alice.node);
 */
export async function testMember(): Promise<TestMember> {
  const seed = new Uint8Array(randomBytes(32));
  const identity = await identityFromSeed(seed);
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const raw = new Uint8Array(
    createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32),
  );
  const device = registerTestDevice(raw, privateKey);
  const keys = { device, signingKey: toHex(raw), agreementKey: toHex(identity.agreementPublic) };
  return { identity, device, keys, node: { creator: raw, privateKey } };
}

/**
 * Test support: one device's chain in one space, making its next data or membership commit (header
 * epoch `MEMBERSHIP_EPOCH`, body the operation's canonical JSON) with the right seq and prevHash.
 *
 * @example
 * const chain = new TestChain(space, alice.device);
 * const [c1, c2] = [chain.membership(createOp), chain.data()];
 */
export class TestChain {
  #seq = 0;
  #prevHash: Uint8Array = new Uint8Array(32);
  readonly #earlier: Uint8Array[] = [];

  constructor(
    readonly space: string,
    readonly device: string,
  ) {}

  /** The next commit, carrying `op`. */
  membership(op: MembershipOp): Uint8Array {
    return this.#next({ epoch: MEMBERSHIP_EPOCH, bodies: [new TextEncoder().encode(canonicalJson(op))] });
  }

  /** The next data commit (random body). */
  data(): Uint8Array {
    return this.#next({});
  }

  /** Forgets the last commit made (one the relay refused), so the next takes its seq again. */
  rewind(): void {
    this.#seq -= 1;
    this.#prevHash = this.#earlier.pop()!;
  }

  #next(options: { epoch?: number; bodies?: Uint8Array[] }): Uint8Array {
    const [commit] = makeChain(this.space, this.device, 1, {
      from: this.#seq + 1,
      prevHash: this.#prevHash,
      ...options,
    });
    this.#seq += 1;
    this.#earlier.push(this.#prevHash);
    this.#prevHash = sha256(commit!);
    return commit!;
  }
}

/**
 * Test support: a space's membership log as one author sees it, each new operation's parents the
 * current heads (a linear log).
 *
 * @example
 * const log = new TestLog(space);
 * const create = await log.sign(alice, { kind: "create", person: "p-alice", name: "A", device: alice.keys });
 */
export class TestLog {
  #heads: string[] = [];

  constructor(readonly space: string) {}

  /**
   * Another author's view of the same log from here on: what each signs next is concurrent with what
   * the other signs (two admins offline at once).
   */
  fork(): TestLog {
    const other = new TestLog(this.space);
    other.#heads = [...this.#heads];
    return other;
  }

  /** A new operation by `author`, after every operation signed so far. */
  async sign(author: TestMember, action: MembershipAction, at = Date.now()): Promise<MembershipOp> {
    const op = await signOp(author.identity, { space: this.space, parents: this.#heads, at, action });
    this.#heads = [await opId(op)];
    return op;
  }
}

/**
 * Test support: the `shoal-device.` item proving `member`'s device for `space` at `time`.
 *
 * @example
 * connect(relay.wsUrl, space, token, { items: [await deviceProof(alice, space)] });
 */
export async function deviceProof(member: TestMember, space: string, time = Date.now()): Promise<string> {
  const signed = deviceAuthSigned(fromHex(space, 16), time);
  const signature = await signBytes(member.identity.signingKey, SIGNING_LABELS.deviceAuth, signed);
  return encodeDeviceAuth({ signingKey: member.identity.signingPublic, time, signature });
}

/** An invitation's secret and key pair, as the link carries the secret. */
export interface TestInvitation {
  key: CryptoKey;
  /** The invitation's public key, hex: its id in the log. */
  id: string;
}

/** Test support: a new invitation key pair. */
export async function testInvitation(): Promise<TestInvitation> {
  const { privateKey, publicKey } = await signingKeyFromSeed(new Uint8Array(randomBytes(32)));
  return { key: privateKey, id: toHex(publicKey) };
}

/**
 * Test support: the `shoal-invitation.` item by which `member`'s device shows `invitation`, and the
 * proof its `redeem` operation carries (the same signature).
 *
 * @example
 * const { item, proof } = await invitationProof(invitation, space, bob);
 */
export async function invitationProof(
  invitation: TestInvitation,
  space: string,
  member: TestMember,
): Promise<{ item: string; proof: string }> {
  const proof = await redemptionProof(invitation.key, space, member.device);
  return {
    item: encodeInvitationProof({ invitation: fromHex(invitation.id, 32), proof: fromHex(proof, 64) }),
    proof,
  };
}
