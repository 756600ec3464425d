import { describe, expect, it } from "vitest";
import { ShoalError } from "../errors.ts";
import type { DeviceId } from "../types.ts";
import {
  decodeCompactedSnapshot,
  encodeCompactedSnapshot,
  type CompactedSnapshot,
} from "./compacted-snapshot.ts";

const snapshot: CompactedSnapshot = {
  publisher: "0123456789abcdef0123456789abcdef" as DeviceId,
  vector: { ffeeddccbbaa99887766554433221100: 7, "00112233445566778899aabbccddeeff": 3 },
  docs: [
    {
      id: "01234567-89ab-cdef-0123-456789abcdef",
      collection: "patients",
      deleted: false,
      bin: Uint8Array.of(1, 2, 3),
      heads: ["ab".repeat(32)],
      row: { id: "01234567-89ab-cdef-0123-456789abcdef", name: "Ada" },
    },
    {
      id: "fedcba98-7654-3210-fedc-ba9876543210",
      collection: "visits",
      deleted: true,
      bin: Uint8Array.of(9),
      heads: [],
    },
  ],
};

describe("compacted snapshot codec (format 3)", () => {
  it("round-trips the vector and the records, and carries no commit", () => {
    const bytes = encodeCompactedSnapshot(snapshot);
    expect(bytes[0]).toBe(3);
    expect(decodeCompactedSnapshot(bytes)).toEqual(snapshot);
  });

  it("refuses another format, and every truncation or trailing byte", () => {
    const bytes = encodeCompactedSnapshot(snapshot);
    const other = bytes.slice();
    other[0] = 2;
    expect(() => decodeCompactedSnapshot(other)).toThrow(ShoalError);
    for (let n = 0; n < bytes.length; n++)
      expect(() => decodeCompactedSnapshot(bytes.subarray(0, n))).toThrow();
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decodeCompactedSnapshot(longer)).toThrow();
  });

  it("refuses a device count larger than the snapshot before reading it", () => {
    const bytes = encodeCompactedSnapshot({ ...snapshot, docs: [] }).slice();
    new DataView(bytes.buffer).setUint32(17, 0x7fffffff);
    expect(() => decodeCompactedSnapshot(bytes)).toThrow(/device count/);
  });
});
