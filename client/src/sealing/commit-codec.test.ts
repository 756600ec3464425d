import { describe, expect, it } from "vitest";
import { ProtocolError, ValidationError } from "../errors.ts";
import type { Commit } from "../replica/commit.ts";
import type { CommitId, DeviceId, RecordId, SpaceId } from "../types.ts";
import { decodeCommitPlaintext, encodeCommitPlaintext } from "./commit-codec.ts";

const space = "00112233445566778899aabbccddeeff" as SpaceId;
const device = "ffeeddccbbaa99887766554433221100" as DeviceId;
const commit: Commit = {
  id: `${space}.${device}.7` as CommitId,
  space,
  device,
  seq: 7,
  at: 1_764_000_000_123,
  changes: [
    {
      record: "019ab2c3-d4e5-7f00-8123-456789abcdef" as RecordId,
      collection: "patients",
      op: "update",
      paths: ["name", "notes"],
      changes: [new Uint8Array([1, 2, 3]), new Uint8Array([4])],
    },
    {
      record: "019ab2c3-d4e5-7f00-8123-456789abcde0" as RecordId,
      collection: "visits",
      op: "delete",
      paths: [],
      changes: [new Uint8Array([9])],
    },
  ],
};

describe("commit plaintext codec", () => {
  it("round-trips and is canonical", () => {
    const bytes = encodeCommitPlaintext(commit);
    const back = decodeCommitPlaintext(bytes, { space, device, seq: 7 });
    expect(back).toEqual(commit);
    expect(encodeCommitPlaintext(back)).toEqual(bytes);
  });
  it("lays out the first bytes as PROTOCOL.md 3.2 says", () => {
    const bytes = encodeCommitPlaintext(commit);
    // version, u64 time, u32 record count, then the first record id.
    expect([...bytes.slice(0, 13)]).toEqual([
      0x01, 0x00, 0x00, 0x01, 0x9a, 0xb6, 0x97, 0xe8, 0x7b, 0x00, 0x00, 0x00, 0x02,
    ]);
    expect([...bytes.slice(13, 29)]).toEqual([
      0x01, 0x9a, 0xb2, 0xc3, 0xd4, 0xe5, 0x7f, 0x00, 0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
    ]);
    expect(bytes[29]).toBe(1); // op: update
  });
  it("refuses truncated, trailing and out-of-range input with typed errors", () => {
    const bytes = encodeCommitPlaintext(commit);
    expect(() =>
      decodeCommitPlaintext(bytes.slice(0, bytes.length - 1), { space, device, seq: 7 }, { strict: true }),
    ).toThrow(ProtocolError);
    expect(() =>
      decodeCommitPlaintext(new Uint8Array([...bytes, 0]), { space, device, seq: 7 }, { strict: true }),
    ).toThrow(ProtocolError);
    const badOp = bytes.slice();
    badOp[29] = 9;
    expect(() => decodeCommitPlaintext(badOp, { space, device, seq: 7 }, { strict: true })).toThrow(
      ValidationError,
    );
    const badVersion = bytes.slice();
    badVersion[0] = 2;
    expect(() => decodeCommitPlaintext(badVersion, { space, device, seq: 7 }, { strict: true })).toThrow(
      ValidationError,
    );
  });
});
