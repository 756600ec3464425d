import { describe, expect, it } from "vitest";
import { DecryptError } from "../errors.ts";
import { deriveCommitKey, randomId16, randomSpaceKey } from "./keys.ts";
import { paddedSize } from "./padding.ts";
import { NONCE_BYTES, openCommit, openSealedView, sealCommit, TAG_BYTES } from "./seal.ts";

const aad = new TextEncoder().encode("v1|space|device|seq=7|epoch=0|prev");

function randomBytes(n: number): Uint8Array {
  // getRandomValues fills at most 65,536 bytes per call.
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65_536) crypto.getRandomValues(out.subarray(at, at + 65_536));
  return out;
}

async function newKey(): Promise<CryptoKey> {
  return deriveCommitKey(randomSpaceKey(), randomId16(), 0);
}

describe("sealCommit / openCommit", () => {
  it("round trips plaintexts of many sizes, including empty", async () => {
    const key = await newKey();
    for (const n of [0, 1, 100, 252, 253, 4096, 70_000]) {
      const plaintext = randomBytes(n);
      expect(await openCommit(key, aad, await sealCommit(key, aad, plaintext))).toEqual(plaintext);
    }
  });

  it("makes the body exactly nonce + bucket + tag long", async () => {
    const key = await newKey();
    for (const n of [0, 10, 252, 253, 1000, 65_532, 65_533, 200_000]) {
      const body = await sealCommit(key, aad, new Uint8Array(n));
      expect(body.length).toBe(NONCE_BYTES + paddedSize(n) + TAG_BYTES);
    }
    expect((await sealCommit(key, aad, new Uint8Array(10))).length).toBe(12 + 256 + 16);
  });

  it("hides the exact size: 1 and 250 bytes seal to the same length", async () => {
    const key = await newKey();
    const a = await sealCommit(key, aad, new Uint8Array(1));
    const b = await sealCommit(key, aad, new Uint8Array(250));
    expect(a.length).toBe(b.length);
  });

  it("uses a fresh nonce every time", async () => {
    const key = await newKey();
    const plaintext = new Uint8Array([1, 2, 3]);
    const nonces = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const body = await sealCommit(key, aad, plaintext);
      nonces.add(Buffer.from(body.subarray(0, NONCE_BYTES)).toString("hex"));
    }
    expect(nonces.size).toBe(50);
  });

  it("rejects a tampered ciphertext byte, anywhere", async () => {
    const key = await newKey();
    const body = await sealCommit(key, aad, new TextEncoder().encode("Ada, diabetic"));
    for (const at of [0, NONCE_BYTES - 1, NONCE_BYTES, 100, body.length - 1]) {
      const bad = body.slice();
      bad[at]! ^= 0x01;
      await expect(openCommit(key, aad, bad)).rejects.toThrow(DecryptError);
    }
  });

  it("rejects a tampered AAD byte (a moved or reordered commit)", async () => {
    const key = await newKey();
    const body = await sealCommit(key, aad, new Uint8Array([1]));
    const bad = aad.slice();
    bad[aad.length - 1]! ^= 0x80;
    await expect(openCommit(key, bad, body)).rejects.toThrow(DecryptError);
    await expect(openCommit(key, new Uint8Array(0), body)).rejects.toThrow(DecryptError);
  });

  it("rejects the wrong key", async () => {
    const body = await sealCommit(await newKey(), aad, new Uint8Array([1]));
    await expect(openCommit(await newKey(), aad, body)).rejects.toThrow(DecryptError);
  });

  it("rejects a truncated body, down to nothing", async () => {
    const key = await newKey();
    const body = await sealCommit(key, aad, new Uint8Array([1]));
    for (const length of [body.length - 1, NONCE_BYTES + TAG_BYTES, NONCE_BYTES + TAG_BYTES - 1, 5, 0]) {
      await expect(openCommit(key, aad, body.subarray(0, length))).rejects.toThrow(DecryptError);
    }
  });

  it("rejects a correctly encrypted frame with bad padding", async () => {
    const key = await newKey();
    // Encrypt a frame by hand that claims more bytes than it holds: the tag is valid, the padding is not.
    const frame = new Uint8Array(256);
    new DataView(frame.buffer).setUint32(0, 1000);
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, frame);
    const body = new Uint8Array([...nonce, ...new Uint8Array(ct)]);
    await expect(openCommit(key, aad, body)).rejects.toThrow(DecryptError);
  });

  it("opens a body that sits at an offset inside a larger buffer (a received frame)", async () => {
    const key = await newKey();
    const body = await sealCommit(key, aad, new Uint8Array([4, 5, 6]));
    const frame = new Uint8Array(body.length + 40);
    frame.set(body, 40);
    expect(await openCommit(key, aad, frame.subarray(40))).toEqual(new Uint8Array([4, 5, 6]));
  });
});

describe("deterministic sealing with a nonce key", () => {
  it("seals the same commit to the same bytes and different commits under different nonces", async () => {
    const { deriveCommitKey, deriveNonceKey } = await import("./keys.ts");
    const spaceKey = new Uint8Array(32).fill(7);
    const device = new Uint8Array(16).fill(1);
    const key = await deriveCommitKey(spaceKey, device, 0);
    const nonceKey = await deriveNonceKey(spaceKey, device, 0);
    const aad = new Uint8Array([1, 2, 3]);
    const a1 = await sealCommit(key, aad, new TextEncoder().encode("one"), nonceKey);
    const a2 = await sealCommit(key, aad, new TextEncoder().encode("one"), nonceKey);
    const b = await sealCommit(key, aad, new TextEncoder().encode("two"), nonceKey);
    expect(a2).toEqual(a1);
    expect(b.slice(0, 12)).not.toEqual(a1.slice(0, 12));
    expect(new TextDecoder().decode(await openCommit(key, aad, b))).toBe("two");
  });
});

describe("openSealedView", () => {
  it("opens what sealCommit sealed, also from a view into a larger buffer, and refuses altered bytes", async () => {
    const key = await newKey();
    for (const n of [0, 253, 70_000, 300_000]) {
      const plaintext = randomBytes(n);
      const sealed = await sealCommit(key, aad, plaintext);
      // As a snapshot arrives: a view at an offset of the buffer its parts were joined into.
      const joined = new Uint8Array(sealed.length + 7);
      joined.set(sealed, 3);
      const view = joined.subarray(3, 3 + sealed.length);
      expect(await openSealedView(key, aad, view)).toEqual(plaintext);
      view[NONCE_BYTES + 1]! ^= 1;
      await expect(openSealedView(key, aad, view)).rejects.toBeInstanceOf(DecryptError);
    }
    await expect(openSealedView(key, aad, new Uint8Array(NONCE_BYTES))).rejects.toBeInstanceOf(DecryptError);
  });
});
