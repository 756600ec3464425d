import { generateKeyPairSync, sign, webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  SIGNING_LABELS,
  appendSignature,
  decodeSealedCommit,
  signedMessage,
  unsignedCommit,
  type DecodedSealedCommit,
} from "@shoal/client/protocol";
import { CommitSignatureInvalid, checkCommitSignature } from "./commit-signature.ts";
import { deviceKeys, makeChain, randomId, sha256, signCommit, testDevice } from "./store/commit-fixtures.ts";

const space = randomId();

/** The commit, with `author` in its header if given, signed by `signer` (a device made by `testDevice`). */
function resigned(commit: Uint8Array, signer: string, author?: Uint8Array): Uint8Array {
  const { header, body } = decodeSealedCommit(commit);
  const forged = { ...header, author: author ?? header.author };
  return signCommit(unsignedCommit(forged, body), deviceKeys(signer).privateKey);
}

function fault(commit: Uint8Array): string | undefined {
  try {
    checkCommitSignature(decodeSealedCommit(commit));
    return undefined;
  } catch (e) {
    if (!(e instanceof CommitSignatureInvalid)) throw e;
    return e.reason;
  }
}

describe("checkCommitSignature", () => {
  it("accepts a commit signed by the key its device id is derived from, again and again", () => {
    const d = testDevice();
    for (const c of makeChain(space, d, 3)) expect(fault(c)).toBeUndefined();
    expect(fault(makeChain(space, d, 1)[0]!)).toBeUndefined(); // its key is cached by now
  });

  it("agrees with WebCrypto on what the client signs (label, zero byte, then the commit)", async () => {
    const [c] = makeChain(space, testDevice(), 1);
    expect(await webcryptoCheck(decodeSealedCommit(c!))).toBe(true);
  });

  it("refuses a flipped bit in the signature, the body or the header", () => {
    const [c] = makeChain(space, testDevice(), 1, { bodyBytes: 100 });
    for (const at of [c!.length - 1, c!.length - 64, 150, 42]) {
      const bad = c!.slice();
      bad[at]! ^= 0x01;
      expect(fault(bad)).toBe("bad-signature");
    }
  });

  it("refuses a device id that is not derived from the author key, signed or not by that key", () => {
    const d = testDevice();
    const e = testDevice();
    const [c] = makeChain(space, d, 1);
    // e's key in the header and e's valid signature, but d's device id: e cannot write as d.
    const asD = resigned(c!, e, deviceKeys(e).author);
    expect(fault(asD)).toBe("wrong-author");
    expect(() => checkCommitSignature(decodeSealedCommit(asD))).toThrow(
      expect.objectContaining({ device: d, seq: 1, reason: "wrong-author" }),
    );
  });

  it("refuses a commit signed by another key than its author's", () => {
    const d = testDevice();
    const [c] = makeChain(space, d, 1);
    expect(fault(resigned(c!, testDevice()))).toBe("bad-signature");
  });

  it("refuses an author key that is no Ed25519 point, without throwing anything else", () => {
    // Many 32-byte strings are not on the curve: the relay must answer `bad-signature` for them, not
    // throw (the device id is made to match, so only the key itself is wrong).
    const { privateKey } = generateKeyPairSync("ed25519");
    for (let i = 0; i < 20; i++) {
      const author = new Uint8Array(32).fill(i * 13 + 2);
      const [base] = makeChain(space, testDevice(), 1);
      const { header, body } = decodeSealedCommit(base!);
      const device = sha256(author).subarray(0, 16);
      const unsigned = unsignedCommit({ ...header, device, author }, body);
      const sig = new Uint8Array(sign(null, signedMessage(SIGNING_LABELS.commit, unsigned), privateKey));
      expect(fault(appendSignature(unsigned, sig))).toBe("bad-signature");
    }
  });
});

/** Verifies the way the client does (WebCrypto Ed25519 over the labelled message). */
async function webcryptoCheck({ header, signed, signature }: DecodedSealedCommit): Promise<boolean> {
  const key = await webcrypto.subtle.importKey("raw", header.author.slice(), { name: "Ed25519" }, false, [
    "verify",
  ]);
  const message = signedMessage(SIGNING_LABELS.commit, signed);
  return webcrypto.subtle.verify({ name: "Ed25519" }, key, signature.slice(), message);
}
