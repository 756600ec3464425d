import { describe, expect, it } from "vitest";
import { decodeFanOutMessage, encodeFanOutMessage } from "./fan-out.ts";

describe("fan-out messages", () => {
  const instance = new Uint8Array(16).fill(7);

  it("carry the publishing instance, the publish time and the commits, byte for byte", () => {
    const commits = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(9)];
    const decoded = decodeFanOutMessage(encodeFanOutMessage(instance, 1_700_000_000_123.25, commits));
    expect(decoded.instance).toEqual(instance);
    expect(decoded.sentAt).toBe(1_700_000_000_123.25);
    expect(decoded.commits).toEqual(commits);
  });

  it("refuse a wrong version, a truncated commit and trailing bytes", () => {
    const good = encodeFanOutMessage(instance, 1, [new Uint8Array([1, 2, 3])]);
    const wrongVersion = Buffer.from(good);
    wrongVersion[0] = 2;
    expect(() => decodeFanOutMessage(wrongVersion)).toThrow(/bad/);
    expect(() => decodeFanOutMessage(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(() => decodeFanOutMessage(Buffer.concat([good, Buffer.from([0])]))).toThrow(/trailing/);
  });
});
