// Hostile input against the client's decoder and sync engine (issue 6): a malicious relay (an in-process
// fake behind `memoryTransport`, whose server side is written here) sends random, truncated and
// bit-flipped frames, `commits` frames with garbage sealed commits, commits for another space, validly
// sealed commits with garbage plaintexts (it holds the space key, like any member), absurd vectors and
// oversized counts. The replica must never throw out of the engine (no unhandled rejection), report
// typed errors in `db.status.lastError`, keep its data intact, and still sync with the real relay after.
// Replay with SHOAL_HOSTILE_SEED=<seed>.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/index.ts";
import { deriveCommitKey, deriveNonceKey } from "../../src/crypto/keys.ts";
import { sealCommit, sha256 } from "../../src/crypto/seal.ts";
import {
  COMMIT_FORMAT_VERSION,
  decodeMessage,
  encodeCommitHeader,
  encodeMessage,
  encodeSealedCommit,
  fromHex,
  type CommitHeader,
  type Message,
} from "../../src/protocol/index.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import { memoryTransport, type MemoryServerEnd } from "../../src/transports/memory-transport.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";
import { sealAs } from "../seal-as.ts";
import { identityFromSeed } from "../../src/identity/identity-from-seed.ts";

const SEED = Number(process.env.SHOAL_HOSTILE_SEED ?? 4242);
const FRAMES = Number(process.env.SHOAL_HOSTILE_FRAMES ?? 400);
const WAIT_MS = 10_000;

type P = { name: string; ward: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };
let n = 0;
const open = (label: string) =>
  openDatabase<{ patients: P }>({
    name: `hostile-${label}-${process.pid}-${n++}`,
    collections,
    persist: false,
  });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`seed ${SEED}: nothing within ${WAIT_MS} ms: ${what}`)),
        WAIT_MS,
      );
    }),
  ]);
}

/**
 * What must not change while only hostile frames arrive: rows, documents, log, vectors of the honest
 * devices. (A validly sealed commit of a made-up device is authentic: refused, it is quarantined and
 * its slot counts as held, so that device's vector entry may appear.)
 */
async function dataOf(db: Db, honest: readonly string[]): Promise<string> {
  const d = db.replica.dexie;
  const bin = (_: string, v: unknown) => (v instanceof Uint8Array ? Array.from(v).join(",") : v);
  return JSON.stringify(
    {
      rows: await d.table("patients").toArray(),
      docs: await d.table("_docs").toArray(),
      commits: await d.table("_commits").toArray(),
      vectors: (await d.table("_vectors").toArray()).filter((v) => honest.includes(v.device)),
      spaces: await d.table("_spaces").toArray(),
    },
    bin,
  );
}

/**
 * A relay that speaks just enough protocol to get the client going (welcome on hello) and hands every
 * welcomed connection to the test, which then sends what it likes. Every frame the client sends is
 * recorded; pongs resolve the test's waits.
 */
class FakeRelay {
  /** The one space this fake serves; connections for the device's other spaces are left unanswered. */
  constructor(readonly space: string) {}
  current: MemoryServerEnd | null = null;
  connections = 0;
  readonly #waiters = new Set<() => void>();
  readonly pongs = new Set<number>();
  #ready = false;

  readonly accept = (space: string, _token: Uint8Array, server: MemoryServerEnd) => {
    if (space !== this.space) return;
    this.connections++;
    this.current = server;
    this.#ready = false;
    server.onMessage = (frame) => {
      const m = decodeMessage(frame); // the client must only ever send valid frames
      if (m.type === "hello") server.send(encodeMessage({ type: "welcome", version: 1, vector: [] }));
      if (m.type === "pull" && server === this.current) this.#ready = true;
      if (m.type === "pong") this.pongs.add(m.nonce);
      this.#wake();
    };
    server.onClose = () => this.#wake();
  };

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves once `test()` holds, re-checked on every frame or close. */
  until(test: () => boolean, what: string): Promise<void> {
    return within(
      new Promise<void>((resolve) => {
        const check = () => {
          if (!test()) return;
          this.#waiters.delete(check);
          resolve();
        };
        this.#waiters.add(check);
        check();
      }),
      what,
    );
  }

  /** A welcomed connection that pulled: the client is ready for anything. */
  async ready(): Promise<MemoryServerEnd> {
    await this.until(
      () => this.#ready && !!this.current && !this.current.closed,
      "the client to connect and pull",
    );
    return this.current!;
  }
}

describe("a malicious relay cannot crash a replica or corrupt its data", () => {
  it(`${FRAMES} seeded hostile frames: no throw out of the engine, typed errors, data intact, and sync works after`, async () => {
    const prng = seededRandom(SEED);
    const rnd = { ...prng, bytes: (k: number) => Uint8Array.from({ length: k }, () => prng.int(256)) };
    let unhandled = 0;
    const reasons: string[] = [];
    const onUnhandled = (e: unknown) => {
      unhandled++;
      reasons.push(String((e as Error)?.stack ?? e));
    };
    process.on("unhandledRejection", onUnhandled);
    cleanups.push(() => void process.off("unhandledRejection", onUnhandled));

    // An honest device A and the victim B share a space through the real (in-process) relay.
    const relay = inProcessRelay({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000 } });
    cleanups.push(() => relay.close());
    const a = await open("a");
    const b = await open("b");
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const space = await a.createSpace({ name: "Hostile" });
    await b.join(await a.invite(space, "https://app.example/"));
    for (let i = 0; i < 12; i++)
      await a.patients.insert({ name: `A${i}`, ward: "A", notes: `note ${i}` }, { space });
    const stopA = a.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 2, maxMs: 20 } });
    cleanups.push(() => stopA());
    const stopB1 = b.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 2, maxMs: 20 } });
    await waitFor(
      b.patients.live((c) => c.count()),
      (x) => x === 12,
      20_000,
      "b to receive A's 12",
    );
    await waitFor(b.status, (s) => s.state === "synced", 20_000, "b synced");
    stopB1();
    // What B holds is the material for valid frames to replay and mutate (nothing in them is new to B).
    const held = (await relay.store.read(space.id, new Map(), { maxBytes: 1 << 20, maxCount: 1024 })).commits;
    expect(held.length).toBe(12);
    // Meanwhile A goes on, and B makes a commit offline that no relay has seen.
    for (let i = 12; i < 20; i++)
      await a.patients.insert({ name: `A${i}`, ward: "A", notes: `note ${i}` }, { space });
    const mine = await b.patients.insert({ name: "B offline", ward: "B", notes: "only on b" }, { space });
    const myCommit = (await b.patients.history(mine))[0]!.commit;
    expect(await b.durability(myCommit)).toEqual({ local: true, relay: false, devices: [] });
    const before = await dataOf(b, [a.deviceId, b.deviceId]);

    // Validly sealed commits with garbage inside: the fake holds the space key, as any member could.
    const key = (await b.replica.dexie.table("_spaces").get(space.id)).key as Uint8Array;
    const spaceBytes = fromHex(space.id, 16);
    // Each made-up device has its own keys (from the seeded generator), so its commits are signed right.
    const sealed = async (plaintext: Uint8Array, opts: { seq?: number; space?: Uint8Array } = {}) => {
      const seq = opts.seq ?? 1;
      const prevHash = seq === 1 ? new Uint8Array(32) : await sha256(rnd.bytes(8));
      const signer = await identityFromSeed(rnd.bytes(32));
      return sealAs(signer, key, { space: opts.space ?? spaceBytes, seq, prevHash }, plaintext);
    };
    // Plaintext layout (PROTOCOL.md 3.2): u8 version, u64 at, u32 records, then per record id(16), op,
    // u16+collection, u16 paths, u32 changes, (u32+bytes) per change.
    const plaintext = (opts: {
      records?: number;
      declared?: number;
      collection?: string;
      change?: Uint8Array;
      op?: number;
    }) => {
      const parts: number[] = [1, 0, 0, 0, 0, 0, 0, 0, 42];
      const u16 = (x: number) => parts.push((x >>> 8) & 255, x & 255);
      const u32 = (x: number) => parts.push((x >>> 24) & 255, (x >>> 16) & 255, (x >>> 8) & 255, x & 255);
      const records = opts.records ?? 1;
      u32(opts.declared ?? records);
      for (let r = 0; r < records; r++) {
        const id = rnd.bytes(16);
        id[6] = (id[6]! & 0x0f) | 0x70;
        id[8] = (id[8]! & 0x3f) | 0x80;
        parts.push(...id, opts.op ?? 0);
        const coll = new TextEncoder().encode(opts.collection ?? "patients");
        u16(coll.length);
        parts.push(...coll);
        u16(0);
        const change = opts.change ?? rnd.bytes(1 + rnd.int(60));
        u32(1);
        u32(change.length);
        parts.push(...change);
      }
      return Uint8Array.from(parts);
    };
    // Built by hand (PROTOCOL.md section 2), since the codec refuses to encode a commit of another space.
    const commitsFrame = (
      commits: Uint8Array[],
      opts: { space?: Uint8Array; reply?: boolean; more?: boolean } = {},
    ) => {
      const out: number[] = [
        2,
        0x04,
        ...(opts.space ?? spaceBytes),
        (opts.more ? 1 : 0) | (opts.reply ? 2 : 0),
        commits.length >>> 8,
        commits.length & 255,
      ];
      for (const c of commits)
        out.push(
          (c.length >>> 24) & 255,
          (c.length >>> 16) & 255,
          (c.length >>> 8) & 255,
          c.length & 255,
          ...c,
        );
      return Uint8Array.from(out);
    };
    let huge = 0;
    const absurdVector = (wanted: number) => {
      // A few at the protocol's maximum (4,096 entries); each is written to _acks, so keep them rare.
      const count = wanted === 4096 && huge++ >= 4 ? 50 : wanted;
      return absurdVectorOf(count);
    };
    const absurdVectorOf = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        device: i === 0 ? fromHex(b.deviceId, 16) : rnd.bytes(16),
        seq: Number.MAX_SAFE_INTEGER - rnd.int(3),
      }));
    const validFrames = (): Uint8Array[] => [
      commitsFrame(held.slice(rnd.int(6), 6 + rnd.int(6)), { reply: rnd.next() < 0.5 }),
      encodeMessage({ type: "welcome", version: 1, vector: [{ device: fromHex(a.deviceId, 16), seq: 3 }] }),
      encodeMessage({
        type: "ack",
        space: spaceBytes,
        entries: [{ device: rnd.bytes(16), seq: 1 + rnd.int(100) }],
      }),
      encodeMessage({ type: "ping", nonce: rnd.int(1000) }),
      encodeMessage({
        type: "error",
        code: "gap",
        message: "gap",
        fatal: false,
        device: rnd.bytes(16),
        seq: 1 + rnd.int(9),
      }),
    ];

    type Kind =
      | "random"
      | "truncated"
      | "bit-flip"
      | "garbage-sealed"
      | "other-space"
      | "sealed-garbage-plaintext"
      | "absurd-record-count"
      | "garbage-automerge"
      | "unknown-collection"
      | "far-future-seq"
      | "absurd-welcome"
      | "absurd-ack"
      | "oversized-count"
      | "oversized-frame"
      | "replay"
      | "error-frame";
    const kinds: Kind[] = [
      "random",
      "truncated",
      "bit-flip",
      "bit-flip",
      "garbage-sealed",
      "other-space",
      "sealed-garbage-plaintext",
      "absurd-record-count",
      "garbage-automerge",
      "unknown-collection",
      "far-future-seq",
      "absurd-welcome",
      "absurd-ack",
      "oversized-count",
      "oversized-frame",
      "replay",
      "error-frame",
    ];
    const build = async (kind: Kind): Promise<Uint8Array> => {
      switch (kind) {
        case "random":
          return rnd.bytes(rnd.int(300));
        case "truncated": {
          const f = rnd.pick(validFrames());
          return f.slice(0, rnd.int(f.length));
        }
        case "bit-flip": {
          const f = rnd.pick(validFrames()).slice();
          for (let k = 1 + rnd.int(6); k > 0; k--) f[rnd.int(f.length)]! ^= 1 << rnd.int(8);
          return f;
        }
        case "garbage-sealed": {
          // Garbage in the body, signature and author key (a's own or a random one).
          const header: CommitHeader = {
            version: COMMIT_FORMAT_VERSION,
            space: spaceBytes,
            device: rnd.pick([fromHex(a.deviceId, 16), rnd.bytes(16)]),
            seq: 2 + rnd.int(30),
            epoch: 0,
            prevHash: rnd.bytes(32),
            author: rnd.pick([a.replica.identity!.signingPublic, rnd.bytes(32)]),
          };
          return commitsFrame([encodeSealedCommit(header, rnd.bytes(28 + rnd.int(300)), rnd.bytes(64))]);
        }
        case "other-space": {
          const other = rnd.bytes(16);
          return rnd.next() < 0.5
            ? commitsFrame([await sealed(plaintext({}), { space: other })], { space: other })
            : commitsFrame([await sealed(plaintext({}), { space: other })]);
        }
        case "sealed-garbage-plaintext":
          return commitsFrame([await sealed(rnd.bytes(rnd.int(200)))]);
        case "absurd-record-count":
          return commitsFrame([await sealed(plaintext({ declared: 0xffffffff }))]);
        case "garbage-automerge":
          return commitsFrame([await sealed(plaintext({ records: 1 + rnd.int(3) }))]);
        case "unknown-collection":
          return commitsFrame([
            await sealed(plaintext({ collection: rnd.pick(["nope", "_docs", "Z9", "patients2"]) })),
          ]);
        case "far-future-seq":
          return commitsFrame([await sealed(plaintext({}), { seq: Number.MAX_SAFE_INTEGER - rnd.int(5) })]);
        case "absurd-welcome":
          return encodeMessage({
            type: "welcome",
            version: 1,
            vector: absurdVector(rnd.pick([1, 50, 50, 4096])),
          });
        case "absurd-ack":
          return encodeMessage({
            type: "ack",
            space: spaceBytes,
            entries: absurdVector(rnd.pick([1, 50, 50, 4096])),
          });
        case "oversized-count": {
          // A commits / welcome / ack frame whose count field claims far more than the frame holds or allows.
          const f = rnd
            .pick([
              commitsFrame(held.slice(0, 2)),
              encodeMessage({ type: "welcome", version: 1, vector: [] }),
              encodeMessage({ type: "ack", space: spaceBytes, entries: [] }),
            ])
            .slice();
          const at = f[1] === 0x04 ? 19 : f[1] === 0x02 ? 3 : 18;
          f[at] = 0xff;
          f[at + 1] = 0xff;
          return f;
        }
        case "oversized-frame":
          return new Uint8Array((1 << 20) + 1 + rnd.int(100)).fill(4);
        case "replay":
          return commitsFrame(held, { reply: true, more: rnd.next() < 0.3 });
        case "error-frame":
          return encodeMessage({
            type: "error",
            code: rnd.pick(["protocol", "internal", "quota", "conflict"] as const),
            message: "hostile",
            fatal: rnd.next() < 0.5,
          });
      }
    };

    // B syncs with the fake relay only.
    const fake = new FakeRelay(space.id);
    const codes = new Map<string, number>();
    const statusSub = b.status.subscribe((s) => {
      if (s.lastError) codes.set(s.lastError.code, (codes.get(s.lastError.code) ?? 0) + 1);
    });
    cleanups.push(() => statusSub.unsubscribe());
    const stopB2 = b.sync({ transports: [memoryTransport(fake.accept)], backoff: { baseMs: 1, maxMs: 5 } });
    const sentKinds = new Map<string, number>();
    const spent = new Map<string, number>();
    let closes = 0;
    let nonce = 1_000_000;
    try {
      for (let i = 0; i < FRAMES; i++) {
        const server = await fake.ready();
        const kind = rnd.pick(kinds);
        sentKinds.set(kind, (sentKinds.get(kind) ?? 0) + 1);
        const frame = await build(kind);
        const t0 = performance.now();
        const ping = nonce++;
        server.send(frame);
        server.send(encodeMessage({ type: "ping", nonce: ping }));
        // The session handles frames in order: its pong means it is done with the hostile frame; a
        // close means it dropped the connection (and will reconnect by itself).
        await fake.until(
          () => fake.pongs.has(ping) || server.closed,
          `the client to answer or close after a ${kind} frame (frame ${i})`,
        );
        if (!fake.pongs.has(ping)) closes++;
        spent.set(kind, (spent.get(kind) ?? 0) + performance.now() - t0);
      }
    } finally {
      stopB2();
    }
    // Whatever the engine still had queued has run: the next macrotask is after its microtasks.
    await b.vector();
    console.log(
      `hostile relay seed ${SEED}: ${FRAMES} frames (${[...sentKinds].map(([k, v]) => `${k} ${v} (${Math.round(spent.get(k) ?? 0)} ms)`).join(", ")}); ` +
        `${fake.connections} connections, ${closes} dropped by the client; errors reported: ${[...codes].map(([k, v]) => `${k} ${v}`).join(", ")}`,
    );

    expect(unhandled, `unhandled rejections:\n${reasons.join("\n")}`).toBe(0);
    // Shoal's own typed errors, or an `error` frame the relay sent, reported under its protocol code.
    const typed = (code: string) =>
      ["ProtocolError", "DecryptError", "SignatureInvalid", "ValidationError", "CommitQuarantined"].includes(
        code,
      ) || /^Relay:[a-z-]+$/.test(code);
    expect(
      [...codes.keys()].filter((c) => !typed(c)),
      "untyped errors reached db.status.lastError",
    ).toEqual([]);
    expect(codes.get("ProtocolError") ?? 0).toBeGreaterThan(0);
    expect(codes.get("SignatureInvalid") ?? 0).toBeGreaterThan(0);
    expect(codes.get("DecryptError") ?? 0).toBeGreaterThan(0);
    // Validly sealed garbage is authentic (a key holder wrote it): quarantined, not merely refused.
    expect(
      (await dataOf(b, [a.deviceId, b.deviceId])) === before,
      "B's rows, documents, log or vectors changed",
    ).toBe(true);
    // Every authentic commit B refused is in its quarantine, none of them applied.
    expect(codes.get("CommitQuarantined") ?? 0).toBeGreaterThan(0);
    expect((await b.quarantine()).length).toBeGreaterThan(0);
    expect(await b.replica.dexie.table("_pending").count()).toBeLessThanOrEqual(20_000);

    // Back to the real relay: B uploads its offline commit and receives A's new ones.
    const stopB3 = b.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 2, maxMs: 20 } });
    cleanups.push(() => stopB3());
    await waitFor(
      b.patients.live((c) => c.count()),
      (x) => x === 21,
      20_000,
      "b to hold A's 20 and its own",
    );
    await waitFor(
      a.patients.live((c) => c.count()),
      (x) => x === 21,
      20_000,
      "a to receive B's offline commit",
    );
    await waitFor(b.status, (s) => s.state === "synced", 20_000, "b synced with the real relay");
    // B forwards the authentic commits it quarantined (their slots are held) like any others: A gets
    // them through the relay, quarantines them too, and both end with the same vector.
    const want = JSON.stringify((await b.vector([space.id]))[space.id]);
    await waitFor(
      a.live(async () => JSON.stringify((await a.vector([space.id]))[space.id])),
      (v) => v === want,
      20_000,
      "a to hold the same vector as b",
    );
    expect(unhandled).toBe(0);
  });

  it("a welcome or ack claiming this device's own commits beyond what it ever made does not mark them durable at the relay", async () => {
    const b = await open("claims");
    cleanups.push(() => b.close());
    const space = await b.createSpace({ name: "Claims" });
    const id = await b.patients.insert({ name: "Unsent", ward: "B", notes: "" }, { space });
    const commit = (await b.patients.history(id))[0]!.commit;
    const fake = new FakeRelay(space.id);
    const stop = b.sync({ transports: [memoryTransport(fake.accept)], backoff: { baseMs: 1, maxMs: 5 } });
    cleanups.push(() => stop());
    const server = await fake.ready();
    // The relay has not received anything from B, yet claims B's device far beyond its one commit.
    const claim = [{ device: fromHex(b.deviceId, 16), seq: Number.MAX_SAFE_INTEGER }];
    server.send(encodeMessage({ type: "welcome", version: 1, vector: claim }));
    server.send(encodeMessage({ type: "ack", space: fromHex(space.id, 16), entries: claim }));
    server.send(encodeMessage({ type: "ping", nonce: 7 }));
    await fake.until(() => fake.pongs.has(7) || server.closed, "the client to process the claims");
    expect(fake.pongs.has(7), "the client dropped the connection instead of answering").toBe(true);
    // B has made seq 1 only; an acknowledgement of seq 2^53-1 cannot be about anything B sent.
    expect(
      await b.durability(commit),
      "a claim beyond the device's own vector was recorded as a relay receipt",
    ).toEqual({ local: true, relay: false, devices: [] });
    expect(b.status.get().pendingCommits).toBe(1);
  });
});

// Types only used in annotations above.
export type { Message };
