// Hostile input against a REAL relay process (issue 6): a seeded frame fuzzer sends random bytes,
// truncated, bit-flipped, oversized and replayed frames, a second hello, frames before hello, frames a
// client may not send, text frames, and valid frames naming a space the connection holds no token for,
// over many connections. Throughout, a well-behaved client of another space keeps uploading and pulling
// (checked every CHECK_EVERY hostile frames), the relay's memory stays bounded, and /metrics counts the
// rejected frames. Replay one run with SHOAL_FRAME_FUZZ_SEED=<seed>.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeMessage, fromHex, toHex, type Message } from "@shoal/client/protocol";
import { makeChain, testDevice } from "../src/store/commit-fixtures.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connect, HttpRefusal, type TestClient } from "./ws-client.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";

const SEED = Number(process.env.SHOAL_FRAME_FUZZ_SEED ?? 20261125);
const FRAMES = Number(process.env.SHOAL_FRAME_FUZZ_FRAMES ?? 2000);
const CHECK_EVERY = 100;
/** Hostile frames one connection sends at most before the fuzzer closes it and opens another. */
const PER_CONNECTION = 25;
/** Any single wait (an answer, a close) longer than this fails the run: nothing may hang. */
const WAIT_MS = 10_000;

/** mulberry32: the whole run is a function of SEED. */
function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!,
    bytes: (n: number) => Uint8Array.from({ length: n }, () => int(256)),
  };
}

const started: RelayProcess[] = [];
const sockets: TestClient[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of sockets) c.ws.terminate();
  await Promise.all(started.map((p) => p.stop("SIGKILL")));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`seed ${SEED}: no answer within ${WAIT_MS} ms: ${what}`)),
        WAIT_MS,
      );
    }),
  ]);
}

function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  return Number(line?.match(/(\d+)/)?.[1] ?? NaN);
}

async function metrics(relay: RelayProcess): Promise<string> {
  return (await fetch(`${relay.url}/metrics`)).text();
}
function sumOf(text: string, name: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(name + "{") || l.startsWith(name + " "))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** The sequence in a sealed commit's clear header (bytes 33..41, PROTOCOL.md section 3). */
const seqOf = (commit: Uint8Array) =>
  Number(new DataView(commit.buffer, commit.byteOffset + 33, 8).getBigUint64(0));

async function pullAll(c: TestClient, space: string): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  const vector = new Map<string, number>();
  for (;;) {
    const from = c.frames.length;
    c.send({
      type: "pull",
      space: fromHex(space, 16),
      vector: [...vector].map(([d, seq]) => ({ device: fromHex(d, 16), seq })),
      maxBytes: 1 << 20,
    });
    let reply: Extract<Message, { type: "commits" }>;
    for (let at = from; ;) {
      const m = await within(c.next("commits", at), "a pull reply to the well-behaved client");
      at = c.frames.indexOf(m) + 1;
      if (m.reply) {
        reply = m;
        break;
      }
    }
    for (const commit of reply.commits) {
      got.push(commit);
      vector.set(toHex(commit.subarray(17, 33)), seqOf(commit));
    }
    if (!reply.more) return got;
  }
}

describe("hostile frames against a real relay process", () => {
  it(`survives ${FRAMES} seeded hostile frames while serving a well-behaved client, with bounded memory`, async () => {
    const rnd = prng(SEED);
    const dir = mkdtempSync(join(tmpdir(), "shoal-frame-fuzz-"));
    dirs.push(dir);
    const relay = await startRelayProcess(["--quiet", "--data", dir]);
    started.push(relay);
    const pid = relay.child.pid!;

    // The well-behaved client: its own space, uploading one commit and pulling everything back per check.
    const good = { ...claimedSpace(), device: testDevice() };
    const goodChain = makeChain(good.space, good.device, Math.ceil(FRAMES / CHECK_EVERY) + 2, {
      bodyBytes: 300,
    });
    const g = await connect(relay.wsUrl, good.space, good.token);
    sockets.push(g);
    g.send({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(good.device, 16) });
    await within(g.next("welcome"), "welcome for the well-behaved client");
    let goodUploaded = 0;
    const goodCheck = async (label: string) => {
      const from = g.frames.length;
      g.send({
        type: "commits",
        space: fromHex(good.space, 16),
        commits: [goodChain[goodUploaded]!],
        more: false,
      });
      const ack = await within(g.next("ack", from), `ack for the well-behaved client (${label})`);
      goodUploaded++;
      expect(
        ack.entries.map((e) => [toHex(e.device), e.seq]),
        label,
      ).toEqual([[good.device, goodUploaded]]);
      const all = await pullAll(g, good.space);
      expect(all.map(toHex), `${label}: the well-behaved client's space`).toEqual(
        goodChain.slice(0, goodUploaded).map(toHex),
      );
    };
    await goodCheck("before fuzzing");

    // The hostile side: its own space and token, with a chain it uploads first, so valid frames to
    // replay and mutate exist.
    const hostile = { ...claimedSpace(), device: testDevice() };
    const hChain = makeChain(hostile.space, hostile.device, 20, { bodyBytes: 200 });
    const hSpace = fromHex(hostile.space, 16);
    {
      const c = await connect(relay.wsUrl, hostile.space, hostile.token);
      sockets.push(c);
      c.send({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(hostile.device, 16) });
      await within(c.next("welcome"), "hostile setup welcome");
      c.send({ type: "commits", space: hSpace, commits: hChain, more: false });
      await within(c.next("ack"), "hostile setup ack");
      c.close();
      await within(c.closed, "hostile setup close");
    }
    const entry = () => ({ device: rnd.bytes(16), seq: 1 + rnd.int(1000) });
    const validFrames = (): Uint8Array[] => [
      encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(hostile.device, 16) }),
      encodeMessage({
        type: "pull",
        space: hSpace,
        vector: Array.from({ length: rnd.int(4) }, entry),
        maxBytes: 1 + rnd.int(1 << 20),
      }),
      encodeMessage({
        type: "commits",
        space: hSpace,
        commits: hChain.slice(rnd.int(10), 10 + rnd.int(10)),
        more: false,
      }),
      encodeMessage({ type: "ping", nonce: rnd.int(2 ** 32) }),
      encodeMessage({
        type: "error",
        code: "internal",
        message: "x".repeat(rnd.int(50)),
        fatal: rnd.next() < 0.5,
      }),
      encodeMessage({ type: "ack", space: hSpace, entries: [entry()] }),
    ];
    const startRss = rssKiB(pid);
    const before = await metrics(relay);

    type Kind =
      | "random"
      | "truncated"
      | "bit-flip"
      | "oversized"
      | "replayed-commits"
      | "second-hello"
      | "other-space"
      | "forbidden-type"
      | "text"
      | "before-hello"
      | "ping";
    const kinds: [Kind, number][] = [
      ["random", 18],
      ["truncated", 18],
      ["bit-flip", 24],
      ["oversized", 1],
      ["replayed-commits", 8],
      ["second-hello", 4],
      ["other-space", 8],
      ["forbidden-type", 3],
      ["text", 3],
      ["before-hello", 5],
      ["ping", 8],
    ];
    const totalWeight = kinds.reduce((n, [, w]) => n + w, 0);
    const pickKind = (): Kind => {
      let x = rnd.int(totalWeight);
      for (const [k, w] of kinds) if ((x -= w) < 0) return k;
      return "ping";
    };
    const counts = new Map<string, number>();
    let oversizedSent = 0;
    let sent = 0;
    let connections = 0;
    let fatalErrors = 0;
    let closedByRelay = 0;
    let refusedUpgrades = 0;
    let nonce = 1;

    while (sent < FRAMES) {
      // Now and then, try the well-behaved client's space with a wrong token: refused before any frame.
      if (rnd.next() < 0.02) {
        const err = await connect(relay.wsUrl, good.space, new Uint8Array(randomBytes(32))).then(
          (c) => (sockets.push(c), null),
          (e: unknown) => e,
        );
        expect(err, "a wrong token for another space must be refused").toBeInstanceOf(HttpRefusal);
        expect((err as HttpRefusal).status).toBe(403);
        refusedUpgrades++;
      }
      const c = await within(
        connect(relay.wsUrl, hostile.space, hostile.token),
        "a hostile connection to open",
      );
      sockets.push(c);
      connections++;
      let open = true;
      void c.closed.then(() => (open = false));
      let hello = false;
      if (rnd.next() < 0.85) {
        c.send({ type: "hello", minVersion: 2, maxVersion: 2, device: rnd.bytes(16) });
        await within(c.next("welcome"), "welcome on a hostile connection");
        hello = true;
      }
      for (let i = 0; i < PER_CONNECTION && open && sent < FRAMES; i++) {
        let kind = pickKind();
        if (kind === "oversized" && oversizedSent >= 6) kind = "random";
        if (kind === "before-hello" && hello) kind = "bit-flip";
        let frame: Uint8Array | string;
        switch (kind) {
          case "random":
            frame = rnd.bytes(rnd.int(400));
            break;
          case "truncated": {
            const f = rnd.pick(validFrames());
            frame = f.slice(0, rnd.int(f.length));
            break;
          }
          case "bit-flip": {
            const f = rnd.pick(validFrames()).slice();
            for (let b = 1 + rnd.int(8); b > 0; b--) f[rnd.int(f.length)]! ^= 1 << rnd.int(8);
            frame = f;
            break;
          }
          case "oversized":
            frame = new Uint8Array(oversizedSent++ % 2 === 0 ? (1 << 20) + 1 + rnd.int(1000) : 3 << 20).fill(
              rnd.int(256),
            );
            break;
          case "replayed-commits":
            frame = encodeMessage({
              type: "commits",
              space: hSpace,
              commits: hChain.slice(0, 1 + rnd.int(hChain.length)),
              more: false,
            });
            break;
          case "second-hello":
            frame = encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device: rnd.bytes(16) });
            break;
          case "other-space": {
            // Valid frames naming the well-behaved client's space, for which this connection has no token.
            const gSpace = fromHex(good.space, 16);
            frame =
              rnd.next() < 0.5
                ? encodeMessage({ type: "pull", space: gSpace, vector: [], maxBytes: 1 << 20 })
                : encodeMessage({
                    type: "commits",
                    space: gSpace,
                    commits: makeChain(good.space, testDevice(), 1),
                    more: false,
                  });
            break;
          }
          case "forbidden-type":
            frame =
              rnd.next() < 0.5
                ? encodeMessage({ type: "welcome", version: 1, vector: [entry()] })
                : encodeMessage({ type: "ack", space: hSpace, entries: [entry()] });
            break;
          case "text":
            frame = "not a binary frame " + rnd.int(1000);
            break;
          case "before-hello":
            frame = rnd.pick(validFrames().slice(1));
            break;
          default:
            frame = encodeMessage({ type: "ping", nonce: nonce++ });
        }
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
        sent++;
        // The frame, then a ping: frames are handled in order, so the pong (or the close) shows the
        // relay has dealt with the hostile frame. Nothing waits on a clock.
        const from = c.frames.length;
        const n = nonce++;
        c.sendRaw(frame);
        c.sendRaw(encodeMessage({ type: "ping", nonce: n }));
        const answered = await within(
          Promise.race([
            (async () => {
              for (let at = from; ;) {
                const m = await c.next("pong", at);
                if (m.nonce === n) return "pong" as const;
                at = c.frames.indexOf(m) + 1;
              }
            })().catch(() => "closed" as const),
            c.closed.then(() => "closed" as const),
          ]),
          `the relay to answer or close after a ${kind} frame`,
        );
        if (answered === "closed") {
          open = false;
          closedByRelay++;
          if (c.frames.slice(from).some((f) => f.type === "error" && f.fatal)) fatalErrors++;
        }
        if (sent % CHECK_EVERY === 0) await goodCheck(`after ${sent} hostile frames`);
      }
      if (open) c.close();
      await within(c.closed, "a hostile connection to close");
    }
    await goodCheck("after fuzzing");

    const endRss = rssKiB(pid);
    const after = await metrics(relay);
    const rejected =
      sumOf(after, "shoal_frames_rejected_total") - sumOf(before, "shoal_frames_rejected_total");
    const byReason = after
      .split("\n")
      .filter((l) => l.startsWith("shoal_frames_rejected_total{"))
      .map((l) => l.replace("shoal_frames_rejected_total", ""))
      .join(" ");
    console.log(
      `frame fuzz seed ${SEED}: ${sent} hostile frames over ${connections} connections ` +
        `(${[...counts].map(([k, v]) => `${k} ${v}`).join(", ")}); relay closed ${closedByRelay}, ` +
        `fatal error frames ${fatalErrors}, refused upgrades ${refusedUpgrades}; /metrics rejected +${rejected} (${byReason}); ` +
        `relay RSS ${Math.round(startRss / 1024)} MiB -> ${Math.round(endRss / 1024)} MiB`,
    );
    expect(relay.child.exitCode, "the relay process died").toBeNull();
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
    expect(closedByRelay).toBeGreaterThan(FRAMES / 4);
    // Every fatal error frame is one rejection, and so is every oversized frame cut off without one.
    expect(rejected).toBeGreaterThanOrEqual(fatalErrors);
    expect(rejected).toBeGreaterThanOrEqual(closedByRelay - (counts.get("ping") ?? 0));
    expect(endRss, `RSS ${startRss} KiB -> ${endRss} KiB`).toBeLessThan(2 * startRss + 50 * 1024);
    // The hostile space still holds exactly its chain: nothing hostile was stored over it.
    const check = await connect(relay.wsUrl, hostile.space, hostile.token);
    sockets.push(check);
    check.send({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(hostile.device, 16) });
    const welcome = await within(check.next("welcome"), "final welcome");
    const head = welcome.vector.find((e) => toHex(e.device) === hostile.device);
    expect(head?.seq).toBe(hChain.length);
  });
});
