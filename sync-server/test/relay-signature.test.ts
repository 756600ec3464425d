import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeSealedCommit, fromHex, toHex, unsignedCommit, type Message } from "@shoal/client/protocol";
import {
  deviceKeys,
  makeChain,
  randomId,
  sha256,
  siblingCommit,
  signCommit,
  testDevice,
} from "../src/store/commit-fixtures.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connectReady, uploadCommits, type TestClient } from "./ws-client.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";

// The relay checks every commit's signature before it stores it (PROTOCOL.md section 5), here through
// the real relay process (CLI, SQLite store, WebSockets), driven by raw frames.
const clients: TestClient[] = [];
let relay: RelayProcess;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "shoal-relay-signature-"));
  relay = await startRelayProcess(["--quiet", "--data", dir]);
});

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await relay.stop("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function ready(space: string, token: Uint8Array, device = randomId()): Promise<TestClient> {
  const c = await connectReady(relay.wsUrl, space, token, device);
  clients.push(c);
  return c;
}

const send = uploadCommits;

/** Every commit the relay holds for the space, from a fresh connection. */
async function stored(space: string, token: Uint8Array): Promise<string[]> {
  const c = await ready(space, token);
  c.send({ type: "pull", space: fromHex(space, 16), vector: [], maxBytes: 1 << 20 });
  const reply = await c.next("commits");
  expect(reply.more).toBe(false);
  c.close();
  return reply.commits.map(toHex);
}

async function refusedSignatures(): Promise<number> {
  const text = await (await fetch(`${relay.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('shoal_commits_refused_total{code="signature"} '));
  return line ? Number(line.split(" ")[1]) : 0;
}

/** The commit with `author` in its header (if given), signed by `signer`'s key. */
function resigned(commit: Uint8Array, signer: string, author?: Uint8Array): Uint8Array {
  const { header, body } = decodeSealedCommit(commit);
  return signCommit(
    unsignedCommit({ ...header, author: author ?? header.author }, body),
    deviceKeys(signer).privateKey,
  );
}

// Each forgery of `intact` (device d's commit 3): the relay must refuse it with `signature`.
const forgeries: [string, (intact: Uint8Array) => Uint8Array][] = [
  [
    "a flipped bit in its signature",
    (intact) => {
      const bad = intact.slice();
      bad[bad.length - 10]! ^= 0x20;
      return bad;
    },
  ],
  [
    "a device id not derived from its author key (another device's key, validly signed)",
    (intact) => {
      const other = testDevice();
      return resigned(intact, other, deviceKeys(other).author);
    },
  ],
  ["a signature by another key than its author's", (intact) => resigned(intact, testDevice())],
];

describe("relay process: commit signatures", () => {
  for (const [name, forge] of forgeries) {
    it(`refuses a commit with ${name} alone, with code signature, and keeps serving`, async () => {
      const { space, token } = claimedSpace();
      const d = testDevice();
      const a = await ready(space, token, d);
      const chain = makeChain(space, d, 3);
      const forged = forge(chain[2]!);
      const after = makeChain(space, testDevice(), 1)[0]!; // valid, but behind the forgery
      const before = await refusedSignatures();

      const { ack, error } = await send(a, space, [chain[0]!, chain[1]!, forged, after]);
      // The commits before it are stored and acked; it is refused, non-fatally, by device and seq.
      expect(ack.entries).toEqual([{ device: fromHex(d, 16), seq: 2 }]);
      expect(error).toMatchObject({ type: "error", code: "signature", fatal: false, seq: 3 });
      expect(toHex(error!.device!)).toBe(d);
      expect(await refusedSignatures()).toBe(before + 1);
      // Neither it nor the commit after it in the frame is stored.
      expect(await stored(space, token)).toEqual([chain[0]!, chain[1]!].map(toHex));

      // The connection keeps serving: the intact commit 3 is stored and acked on it.
      const later = await send(a, space, [chain[2]!]);
      expect(later.error).toBeUndefined();
      expect(later.ack.entries).toEqual([{ device: fromHex(d, 16), seq: 3 }]);
      expect(a.ws.readyState).toBe(WebSocket.OPEN);
      expect(await stored(space, token)).toEqual(chain.map(toHex));
    });
  }

  it("refuses a forged first commit with an empty ack and stores nothing", async () => {
    const { space, token } = claimedSpace();
    const a = await ready(space, token);
    const d = testDevice();
    const [first] = makeChain(space, d, 1);
    const { ack, error } = await send(a, space, [resigned(first!, testDevice())]);
    expect(ack.entries).toEqual([]);
    expect(error).toMatchObject({ code: "signature", fatal: false, seq: 1 });
    expect(await stored(space, token)).toEqual([]);
    expect((await send(a, space, [first!])).ack.entries).toEqual([{ device: fromHex(d, 16), seq: 1 }]);
  });

  it("verifies replacements too: a forged one is refused with signature and the stored head stays", async () => {
    const { space, token } = claimedSpace();
    const d = testDevice();
    const a = await ready(space, token, d);
    const chain = makeChain(space, d, 2);
    // The relay holds another commit the author signed at seq 2, so a replacement is possible.
    const rival = siblingCommit(chain[1]!);
    await send(a, space, [chain[0]!, rival]);
    const before = await refusedSignatures();

    for (const forged of [resigned(chain[1]!, testDevice()), forgeries[0]![1](chain[1]!)]) {
      const { ack, error } = await send(a, space, [forged], true);
      expect(ack.entries).toEqual([]);
      expect(error).toMatchObject({ code: "signature", fatal: false, seq: 2 });
    }
    expect(await refusedSignatures()).toBe(before + 2);
    expect(await stored(space, token)).toEqual([chain[0]!, rival].map(toHex));

    // The author's own signed copy still replaces it, and the chain continues from it.
    const replaced = await send(a, space, [chain[1]!], true);
    expect(replaced).toEqual({
      ack: expect.objectContaining({ entries: [{ device: fromHex(d, 16), seq: 2 }] }),
    });
    const [third] = makeChain(space, d, 1, { from: 3, prevHash: sha256(chain[1]!) });
    expect((await send(a, space, [third!])).ack.entries).toEqual([{ device: fromHex(d, 16), seq: 3 }]);
    expect(await stored(space, token)).toEqual([...chain, third!].map(toHex));
  });
});
