import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../errors.ts";
import { commitCountOf, decodeMessage, encodeMessage, encodeVersionRefusal } from "./codec.ts";
import { fromHex, toHex } from "./hex.ts";
import {
  MAX_COMMITS_PER_BATCH,
  MAX_FRAME_BYTES,
  MAX_SNAPSHOT_PARTS,
  MAX_VECTOR_ENTRIES,
  SNAPSHOT_FRAME_OVERHEAD,
  maxSnapshotPartBytes,
} from "./limits.ts";
import type { Message } from "./messages.ts";
import { encodeSealedCommit } from "./sealed-commit.ts";
import { vectorPages } from "./vector-pages.ts";

const space = fromHex("5a".repeat(16));
const device = fromHex("00112233445566778899aabbccddeeff");
const body = new Uint8Array(28).map((_, i) => i);
// The codec checks structure only: the author key and signature here are fillers (cd.., ee..).
const commit = encodeSealedCommit(
  {
    version: 2,
    space,
    device,
    seq: 2,
    epoch: 7,
    prevHash: fromHex("ab".repeat(32)),
    author: new Uint8Array(32).fill(0xcd),
  },
  body,
  new Uint8Array(64).fill(0xee),
);

// The same bytes appear in PROTOCOL.md, section "Worked example"; the last test checks they still do.
const EXAMPLES: Record<string, { hex: string; message: Message }> = {
  hello: {
    hex: `01 01 02 02 00 11 22 33 44 55 66 77 88 99 aa bb
          cc dd ee ff`,
    message: { type: "hello", minVersion: 2, maxVersion: 2, device },
  },
  welcome: {
    hex: `02 02 02 01 00 01 00 11 22 33 44 55 66 77 88 99
          aa bb cc dd ee ff 00 00 00 00 00 00 00 02`,
    message: { type: "welcome", version: 2, vector: [{ device, seq: 2 }], more: true },
  },
  pull: {
    hex: `02 03 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a
          5a 5a 00 01 00 00 00 00 01 00 11 22 33 44 55 66
          77 88 99 aa bb cc dd ee ff 00 00 00 00 00 00 00
          01`,
    message: { type: "pull", space, vector: [{ device, seq: 1 }], maxBytes: 65536 },
  },
  commits: {
    hex: `02 04 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a
          5a 5a 00 00 01 00 00 00 cd 02 5a 5a 5a 5a 5a 5a
          5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 00 11 22 33 44 55
          66 77 88 99 aa bb cc dd ee ff 00 00 00 00 00 00
          00 02 00 00 00 07 ab ab ab ab ab ab ab ab ab ab
          ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab
          ab ab ab ab ab ab cd cd cd cd cd cd cd cd cd cd
          cd cd cd cd cd cd cd cd cd cd cd cd cd cd cd cd
          cd cd cd cd cd cd 00 00 00 1c 00 01 02 03 04 05
          06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15
          16 17 18 19 1a 1b ee ee ee ee ee ee ee ee ee ee
          ee ee ee ee ee ee ee ee ee ee ee ee ee ee ee ee
          ee ee ee ee ee ee ee ee ee ee ee ee ee ee ee ee
          ee ee ee ee ee ee ee ee ee ee ee ee ee ee ee ee
          ee ee ee ee ee ee`,
    message: { type: "commits", space, commits: [commit], more: false, reply: false },
  },
  ack: {
    hex: `02 05 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a
          5a 5a 00 01 00 11 22 33 44 55 66 77 88 99 aa bb
          cc dd ee ff 00 00 00 00 00 00 00 02`,
    message: { type: "ack", space, entries: [{ device, seq: 2 }] },
  },
  error: {
    hex: `02 06 07 02 00 03 67 61 70 00 11 22 33 44 55 66
          77 88 99 aa bb cc dd ee ff 00 00 00 00 00 00 00
          05`,
    message: { type: "error", code: "gap", message: "gap", fatal: false, device, seq: 5 },
  },
  "snapshot-put": {
    hex: `02 09 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a
          5a 5a 00 00 00 01 00 01 00 11 22 33 44 55 66 77
          88 99 aa bb cc dd ee ff 00 00 00 00 00 00 00 02
          00 00 00 04 de ad be ef`,
    message: {
      type: "snapshot-put",
      space,
      vector: [{ device, seq: 2 }],
      part: 0,
      parts: 1,
      bytes: Uint8Array.of(0xde, 0xad, 0xbe, 0xef),
    },
  },
};

const bytesOf = (hex: string) => fromHex(hex.replace(/\s+/g, ""));

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e.reason;
    throw e;
  }
  return "accepted";
}

describe("codec: byte-exact examples", () => {
  for (const [name, { hex, message }] of Object.entries(EXAMPLES)) {
    it(`encodes and decodes the ${name} example`, () => {
      expect(toHex(encodeMessage(message))).toBe(toHex(bytesOf(hex)));
      expect(decodeMessage(bytesOf(hex))).toEqual(message);
    });
  }

  it("PROTOCOL.md shows the same bytes", () => {
    const doc = readFileSync(new URL("../../../PROTOCOL.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    for (const { hex } of Object.values(EXAMPLES)) expect(doc).toContain(hex.replace(/\s+/g, " "));
  });
});

describe("codec: round trips", () => {
  const many = Array.from({ length: 3 }, (_, i) => ({
    device: fromHex(String(i).repeat(32)),
    seq: 2 ** 53 - 1 - i,
  }));
  const cases: Message[] = [
    { type: "hello", minVersion: 1, maxVersion: 7, device },
    { type: "welcome", version: 2, vector: [] },
    { type: "welcome", version: 2, vector: many },
    { type: "welcome", version: 2, vector: many, more: true },
    { type: "pull", space, vector: many, maxBytes: 0xffffffff },
    { type: "pull", space, vector: [], maxBytes: 1, more: true },
    { type: "commits", space, commits: [commit], more: false, reply: false, replace: true },
    { type: "commits", space, commits: [], more: true, reply: true },
    { type: "commits", space, commits: [commit, commit], more: false, reply: true },
    { type: "ack", space, entries: [] },
    { type: "error", code: "protocol", message: "héllo ✓", fatal: true },
    { type: "error", code: "quota", message: "", fatal: false, device, seq: 1 },
    { type: "ping", nonce: 0xffffffff },
    { type: "pong", nonce: 0 },
    { type: "error", code: "stale-snapshot", message: "stale", fatal: false },
    { type: "snapshot-put", space, vector: many, part: 2, parts: 3, bytes: new Uint8Array(1000).fill(7) },
    { type: "snapshot-put", space, vector: [], part: 0, parts: 1, bytes: new Uint8Array(0) },
    {
      type: "snapshot-put",
      space,
      vector: [],
      part: MAX_SNAPSHOT_PARTS - 1,
      parts: MAX_SNAPSHOT_PARTS,
      bytes: Uint8Array.of(1),
    },
    { type: "snapshot-get", space },
    { type: "snapshot", space, vector: many, part: 0, parts: 2, bytes: Uint8Array.of(1, 2, 3) },
    { type: "snapshot", space, vector: [], part: 0, parts: 0, bytes: new Uint8Array(0) },
    { type: "snapshot-stored", space, vector: many },
    { type: "snapshot-stored", space, vector: [] },
  ];
  it("reads a commits frame's commit count from its header, and 0 from every other frame", () => {
    for (const m of cases) {
      const frame = encodeMessage(m);
      expect(commitCountOf(frame)).toBe(m.type === "commits" ? m.commits.length : 0);
      expect(commitCountOf(frame.subarray(0, 20))).toBe(0);
    }
  });

  for (const m of cases) {
    it(`round-trips ${m.type} ${JSON.stringify(m).length}`, () => {
      expect(decodeMessage(encodeMessage(m))).toEqual(m);
    });
  }

  it("decodes from a view into a larger buffer and returns copies", () => {
    const frame = encodeMessage({ type: "commits", space, commits: [commit], more: false });
    const big = new Uint8Array(frame.length + 10);
    big.set(frame, 5);
    const m = decodeMessage(big.subarray(5, 5 + frame.length));
    big.fill(0);
    expect(m).toMatchObject({ type: "commits", commits: [commit] });
  });
});

describe("codec: snapshot frames", () => {
  const put = bytesOf(EXAMPLES["snapshot-put"]!.hex);

  it("fills a frame exactly with the largest part maxSnapshotPartBytes allows", () => {
    const vector = [{ device, seq: 1 }];
    const bytes = new Uint8Array(maxSnapshotPartBytes(vector.length)).fill(9);
    const frame = encodeMessage({ type: "snapshot-put", space, vector, part: 0, parts: 1, bytes });
    expect(frame.length).toBe(MAX_FRAME_BYTES);
    const back = decodeMessage(frame);
    // Compared as hex: a deep equality over a megabyte, element by element, takes seconds.
    expect(back.type === "snapshot-put" && toHex(back.bytes) === toHex(bytes)).toBe(true);
    expect(SNAPSHOT_FRAME_OVERHEAD + 24 + bytes.length).toBe(MAX_FRAME_BYTES);
    const over = new Uint8Array(bytes.length + 1);
    expect(
      reason(() => encodeMessage({ type: "snapshot-put", space, vector, part: 0, parts: 1, bytes: over })),
    ).toBe("oversized");
  });

  it("rejects every truncation and trailing bytes", () => {
    for (let n = 0; n < put.length; n++)
      expect(reason(() => decodeMessage(put.subarray(0, n)))).toBe("truncated");
    expect(reason(() => decodeMessage(Uint8Array.of(...put, 0)))).toBe("trailing-bytes");
    expect(reason(() => decodeMessage(Uint8Array.of(2, 10, ...space, 0)))).toBe("trailing-bytes");
    expect(reason(() => decodeMessage(Uint8Array.of(2, 10, ...space.subarray(1))))).toBe("truncated");
  });

  it("rejects a part outside 0 .. parts - 1 and a put with parts 0", () => {
    const partTooHigh = put.slice();
    partTooHigh[19] = 1; // part 1 of parts 1
    expect(reason(() => decodeMessage(partTooHigh))).toBe("bad-field");
    const noParts = put.slice();
    noParts[21] = 0; // parts 0
    expect(reason(() => decodeMessage(noParts))).toBe("bad-field");
    // As a `snapshot` frame, parts 0 is "none", but only with part 0, no vector and no bytes.
    const none = encodeMessage({
      type: "snapshot",
      space,
      vector: [],
      part: 0,
      parts: 0,
      bytes: new Uint8Array(0),
    });
    expect(none.length).toBe(SNAPSHOT_FRAME_OVERHEAD);
    const noneWithPart = none.slice();
    noneWithPart[19] = 1;
    expect(reason(() => decodeMessage(noneWithPart))).toBe("bad-field");
    const noneWithData = noParts.slice();
    noneWithData[1] = 11; // a `snapshot` frame with parts 0 but a vector and bytes
    expect(reason(() => decodeMessage(noneWithData))).toBe("bad-field");
  });

  it("rejects a length beyond the frame, vectors over the limit and bad seqs", () => {
    const longer = put.slice();
    longer[51] = 5; // claims 5 bytes, 4 follow
    expect(reason(() => decodeMessage(longer))).toBe("truncated");
    const shorter = put.slice();
    shorter[51] = 3;
    expect(reason(() => decodeMessage(shorter))).toBe("trailing-bytes");
    expect(reason(() => decodeMessage(put, { maxVectorEntries: 0 }))).toBe("oversized");
    const seqZero = put.slice();
    seqZero[47] = 0;
    expect(reason(() => decodeMessage(seqZero))).toBe("bad-field");
    const stored = encodeMessage({ type: "snapshot-stored", space, vector: [{ device, seq: 2 }] });
    expect(reason(() => decodeMessage(stored, { maxVectorEntries: 0 }))).toBe("oversized");
    expect(reason(() => decodeMessage(stored.subarray(0, stored.length - 1)))).toBe("truncated");
  });

  it("refuses to encode what it would refuse to decode", () => {
    const base = { type: "snapshot-put" as const, space, vector: [], bytes: new Uint8Array(1) };
    expect(reason(() => encodeMessage({ ...base, part: 1, parts: 1 }))).toBe("bad-field");
    expect(reason(() => encodeMessage({ ...base, part: 0, parts: 0 }))).toBe("bad-field");
    expect(reason(() => encodeMessage({ ...base, part: 0, parts: MAX_SNAPSHOT_PARTS + 1 }))).toBe(
      "bad-field",
    );
    expect(reason(() => encodeMessage({ ...base, part: -1, parts: 2 }))).toBe("bad-field");
    expect(reason(() => encodeMessage({ ...base, part: 0.5, parts: 2 }))).toBe("bad-field");
    expect(reason(() => encodeMessage({ ...base, space: new Uint8Array(3), part: 0, parts: 1 }))).toBe(
      "bad-field",
    );
    expect(
      reason(() => encodeMessage({ ...base, bytes: [1] as unknown as Uint8Array, part: 0, parts: 1 })),
    ).toBe("bad-field");
    expect(reason(() => encodeMessage({ ...base, vector: [{ device, seq: 0 }], part: 0, parts: 1 }))).toBe(
      "bad-field",
    );
    expect(
      reason(() =>
        encodeMessage({
          type: "snapshot",
          space,
          vector: [{ device, seq: 1 }],
          part: 0,
          parts: 0,
          bytes: new Uint8Array(0),
        }),
      ),
    ).toBe("bad-field");
    expect(
      reason(() =>
        encodeMessage({ type: "snapshot", space, vector: [], part: 0, parts: 0, bytes: Uint8Array.of(1) }),
      ),
    ).toBe("bad-field");
    expect(reason(() => encodeMessage({ type: "snapshot-get", space: new Uint8Array(17) }))).toBe(
      "bad-field",
    );
    expect(
      reason(() =>
        encodeMessage({
          type: "snapshot-stored",
          space,
          vector: [
            { device, seq: 1 },
            { device, seq: 2 },
          ],
        }),
      ),
    ).toBe("bad-field");
  });
});

describe("codec: rejection", () => {
  const valid = bytesOf(EXAMPLES.commits!.hex);

  it("rejects every truncation of a valid frame as truncated", () => {
    for (let n = 0; n < valid.length; n++)
      expect(reason(() => decodeMessage(valid.subarray(0, n)))).toBe("truncated");
  });

  it("rejects trailing bytes", () => {
    const longer = new Uint8Array(valid.length + 1);
    longer.set(valid);
    expect(reason(() => decodeMessage(longer))).toBe("trailing-bytes");
  });

  it("rejects an unknown version and an unknown type", () => {
    expect(reason(() => decodeMessage(Uint8Array.of(2, 1, 1, 1, ...device)))).toBe("unknown-version");
    expect(reason(() => decodeMessage(Uint8Array.of(0, 1)))).toBe("unknown-version");
    expect(reason(() => decodeMessage(Uint8Array.of(2, 99)))).toBe("unknown-type");
    expect(reason(() => decodeMessage(Uint8Array.of(2, 0)))).toBe("unknown-type");
    expect(reason(() => decodeMessage(Uint8Array.of(3, 4)))).toBe("unknown-version");
  });

  it("speaks version 2 and leaves version byte 1 only to hello and to error (to refuse version 1)", () => {
    // Any frame of version 1 other than hello and error is refused: version 1 is no longer spoken.
    const pullV1 = bytesOf(EXAMPLES.pull!.hex);
    pullV1[0] = 1;
    expect(reason(() => decodeMessage(pullV1))).toBe("unknown-version");
    const commitsV1 = bytesOf(EXAMPLES.commits!.hex);
    commitsV1[0] = 1;
    expect(reason(() => decodeMessage(commitsV1))).toBe("unknown-version");
    // hello keeps version byte 1 for ever, so a version-1 device is read, and then refused readably.
    expect(encodeMessage({ type: "hello", minVersion: 1, maxVersion: 9, device })[0]).toBe(1);
    expect(decodeMessage(Uint8Array.of(1, 1, 1, 1, ...device))).toMatchObject({ maxVersion: 1 });
    const refusal = encodeVersionRefusal("No common protocol version.");
    expect(refusal[0]).toBe(1);
    expect(decodeMessage(refusal)).toEqual({
      type: "error",
      code: "version",
      message: "No common protocol version.",
      fatal: true,
    });
    const errorV2 = bytesOf(EXAMPLES.error!.hex);
    expect(errorV2[0]).toBe(2);
    expect(decodeMessage(errorV2)).toMatchObject({ code: "gap" });
  });

  it("rejects oversized frames and counts over the limits", () => {
    expect(reason(() => decodeMessage(new Uint8Array(MAX_FRAME_BYTES + 1)))).toBe("oversized");
    expect(reason(() => decodeMessage(valid, { maxFrameBytes: valid.length - 1 }))).toBe("oversized");
    const tooMany = Uint8Array.of(
      2,
      4,
      ...space,
      0,
      (MAX_COMMITS_PER_BATCH + 1) >> 8,
      (MAX_COMMITS_PER_BATCH + 1) & 255,
    );
    expect(reason(() => decodeMessage(tooMany))).toBe("oversized");
    const vector = encodeMessage({
      type: "ack",
      space,
      entries: [
        { device, seq: 1 },
        { device: space, seq: 1 },
      ],
    });
    expect(reason(() => decodeMessage(vector, { maxVectorEntries: 1 }))).toBe("oversized");
    expect(reason(() => decodeMessage(valid, { maxCommitBytes: commit.length - 1 }))).toBe("oversized");
  });

  it("rejects bad fields", () => {
    const seqZero = bytesOf(EXAMPLES.ack!.hex);
    seqZero[seqZero.length - 1] = 0;
    expect(reason(() => decodeMessage(seqZero))).toBe("bad-field");
    const seqHuge = bytesOf(EXAMPLES.ack!.hex);
    seqHuge[36] = 0x00;
    seqHuge[37] = 0x20; // 2^53
    expect(reason(() => decodeMessage(seqHuge))).toBe("bad-field");
    const twice = Uint8Array.of(
      ...bytesOf(EXAMPLES.ack!.hex).subarray(0, 18),
      0,
      2,
      ...[0, 1].flatMap(() => [...device, 0, 0, 0, 0, 0, 0, 0, 1]),
    );
    expect(reason(() => decodeMessage(twice))).toBe("bad-field");
    const flags = bytesOf(EXAMPLES.commits!.hex);
    flags[18] = 0x80;
    expect(reason(() => decodeMessage(flags))).toBe("bad-field");
    flags[18] = 0x05; // replace with more: a replacement is an upload
    expect(reason(() => decodeMessage(flags))).toBe("bad-field");
    const welcomeFlags = bytesOf(EXAMPLES.welcome!.hex);
    welcomeFlags[3] = 0x02;
    expect(reason(() => decodeMessage(welcomeFlags))).toBe("bad-field");
    const pullFlags = bytesOf(EXAMPLES.pull!.hex);
    pullFlags[22] = 0x03;
    expect(reason(() => decodeMessage(pullFlags))).toBe("bad-field");
    const otherSpace = bytesOf(EXAMPLES.commits!.hex);
    otherSpace[2] = 0x5b;
    expect(reason(() => decodeMessage(otherSpace))).toBe("bad-field");
    const badCommitVersion = bytesOf(EXAMPLES.commits!.hex);
    badCommitVersion[25] = 9;
    expect(reason(() => decodeMessage(badCommitVersion))).toBe("unknown-version");
    expect(reason(() => decodeMessage(Uint8Array.of(1, 1, 2, 1, ...device)))).toBe("bad-field");
    const badUtf8 = Uint8Array.of(1, 6, 1, 0, 0, 1, 0xff);
    expect(reason(() => decodeMessage(badUtf8))).toBe("bad-field");
    expect(reason(() => decodeMessage(Uint8Array.of(1, 6, 99, 0, 0, 0)))).toBe("bad-field");
  });

  it("throws only ProtocolError on random bytes (seeded)", () => {
    let seed = 0x5eed;
    const next = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed);
    for (let i = 0; i < 5000; i++) {
      const frame = new Uint8Array(next() % 200).map(() => next() & 0xff);
      // Bias some frames towards a valid header so the field decoders get exercised too.
      if (i % 2 === 0 && frame.length >= 2) {
        frame[1] = 1 + (next() % 13);
        frame[0] = frame[1] === 1 ? 1 : 2;
      }
      const r = reason(() => decodeMessage(frame));
      expect(typeof r, `seed step ${i}`).toBe("string");
    }
  });

  it("refuses to encode what it would refuse to decode", () => {
    expect(
      reason(() =>
        encodeMessage({ type: "hello", minVersion: 1, maxVersion: 1, device: new Uint8Array(15) }),
      ),
    ).toBe("bad-field");
    expect(reason(() => encodeMessage({ type: "ack", space, entries: [{ device, seq: 0 }] }))).toBe(
      "bad-field",
    );
    expect(reason(() => encodeMessage({ type: "ack", space, entries: [{ device, seq: 1.5 }] }))).toBe(
      "bad-field",
    );
    expect(reason(() => encodeMessage({ type: "pull", space, vector: [], maxBytes: 0 }))).toBe("bad-field");
    expect(
      reason(() => encodeMessage({ type: "commits", space: device, commits: [commit], more: false })),
    ).toBe("bad-field");
    expect(
      reason(() => encodeMessage({ type: "error", code: "nope" as "gap", message: "", fatal: true })),
    ).toBe("bad-field");
    expect(
      reason(() => encodeMessage({ type: "error", code: "gap", message: "x".repeat(2000), fatal: true })),
    ).toBe("oversized");
    expect(
      reason(() => encodeMessage({ type: "commits", space, commits: [commit], more: true, replace: true })),
    ).toBe("bad-field");
    const commits = Array.from({ length: MAX_COMMITS_PER_BATCH + 1 }, () => commit);
    expect(reason(() => encodeMessage({ type: "commits", space, commits, more: false }))).toBe("oversized");
  });
});

describe("codec: paged vectors", () => {
  it("cuts any vector into pages of at most MAX_VECTOR_ENTRIES, always at least one", () => {
    const entries = Array.from({ length: 10_000 }, (_, i) => ({
      device: fromHex(i.toString(16).padStart(32, "0")),
      seq: i + 1,
    }));
    const pages = vectorPages(entries);
    expect(pages.map((p) => p.length)).toEqual([MAX_VECTOR_ENTRIES, MAX_VECTOR_ENTRIES, 1808]);
    expect(pages.flat()).toEqual(entries);
    expect(vectorPages([])).toEqual([[]]);
    // Every page is one frame within the limits; the receiver reads them back in order.
    const back = pages.flatMap((page, i) => {
      const m = decodeMessage(
        encodeMessage({ type: "welcome", version: 2, vector: page, more: i < pages.length - 1 }),
      );
      expect(m.type === "welcome" && m.more === (i < pages.length - 1 ? true : undefined)).toBe(true);
      return m.type === "welcome" ? m.vector : [];
    });
    expect(back).toEqual(entries);
  });
});
