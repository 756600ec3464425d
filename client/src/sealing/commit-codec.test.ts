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
  it("encodes names, paths and creations byte for byte as the layout says, in any script", () => {
    // The layout written out by hand with TextEncoder (as the encoder did before it wrote strings in
    // place): a re-sealed commit must stay byte-identical across versions (deterministic sealing).
    const enc = new TextEncoder();
    const parts: number[] = [];
    const u = (v: number, n: number) => {
      for (let i = n - 1; i >= 0; i--) parts.push(Math.floor(v / 2 ** (8 * i)) % 256);
    };
    const text = (s: string, n: number) => {
      const b = enc.encode(s);
      u(b.length, n);
      parts.push(...b);
    };
    const unicode: Commit = {
      ...commit,
      changes: [
        {
          record: "019ab2c3-d4e5-7f00-8123-456789abcdef" as RecordId,
          collection: "dossiers médicaux 病历",
          op: "insert",
          paths: ["nom", "prénom", "emoji😀", "lone\ud800x", ""],
          changes: [],
          create: { json: { nom: "Zoë", "prénom": "x".repeat(300), note: "😀\udfff" }, text: ["note"], counters: [] },
        },
      ],
    };
    parts.push(1);
    u(commit.at, 8);
    u(1, 4);
    parts.push(...[0x01, 0x9a, 0xb2, 0xc3, 0xd4, 0xe5, 0x7f, 0x00, 0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    parts.push(0);
    const rc = unicode.changes[0]!;
    text(rc.collection, 2);
    u(rc.paths.length, 2);
    for (const p of rc.paths) text(p, 2);
    u(0, 4);
    text(JSON.stringify([rc.create!.json, rc.create!.text, rc.create!.counters]), 4);
    expect(encodeCommitPlaintext(unicode)).toEqual(new Uint8Array(parts));
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
