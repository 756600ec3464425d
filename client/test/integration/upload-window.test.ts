// Issue 15, the upload row: an upload streams frames as it seals them, several in flight at once
// within the window, through a real relay process. What must hold however the frames are cut: a commit
// counts as uploaded only once the relay acknowledged it; a commit the relay refuses in the middle of
// the window is refused alone (the ones before it stored, the ones after it sent again and stored); a
// connection lost with frames in flight sends again exactly what the relay did not store.
import { afterEach, describe, expect, it } from "vitest";
import {
  decodeMessage,
  decodeSealedCommit,
  encodeMessage,
  MESSAGE_TYPE_BYTES,
  toHex,
  type Message,
} from "../../src/protocol/index.ts";
import type { Transport, TransportConnection, TransportHandlers } from "../../src/transports/transport.ts";
import type { SpaceId } from "../../src/types.ts";
import { ValueStore } from "../../src/live/value-store.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  relayTransport,
  storedSeqs,
  type Patient,
} from "../relay-harness.ts";

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** What the tap saw on one connection: the seqs of each `commits` frame sent, and the frames received. */
interface Link {
  space: SpaceId;
  sent: number[][];
  received: Message[];
  conn: TransportConnection;
  /** Bytes of each commit sent, by seq. */
  sizes: Map<number, number>;
  /** Highest seq an ack the engine was given (not held back) named. */
  delivered: number;
}

/**
 * A transport to the relay whose links are recorded; `up` may change or drop a `commits` frame before
 * it leaves (its index on the connection given), and acks are held back from the engine while
 * `holdAcks` is set (they reach the engine, in order, once `release()` is called).
 */
function tap(url: string, up?: (frame: Uint8Array, index: number, link: Link) => Uint8Array | "drop") {
  const inner = relayTransport(url);
  const links = new ValueStore<readonly Link[]>([]);
  const held: (() => void)[] = [];
  const state = { holdAcks: false };
  const changed = () => links.set([...links.get()]);
  const transport: Transport = {
    kind: inner.kind,
    label: "upload tap",
    connect(space: SpaceId, token: Uint8Array, handlers: TransportHandlers, claim?: Uint8Array) {
      const link = { space, sent: [], received: [], sizes: new Map(), delivered: 0 } as unknown as Link;
      const deliver = (frame: Uint8Array) => {
        const m = decodeMessage(frame);
        if (m.type === "ack") for (const e of m.entries) link.delivered = Math.max(link.delivered, e.seq);
        handlers.onMessage(frame);
      };
      const tapped: TransportHandlers = {
        onOpen: () => handlers.onOpen(),
        onClose: (reason, code) => handlers.onClose(reason, code),
        onMessage: (frame) => {
          link.received.push(decodeMessage(frame));
          changed();
          if (state.holdAcks && frame[1] === MESSAGE_TYPE_BYTES.ack) held.push(() => deliver(frame));
          else deliver(frame);
        },
      };
      const conn = inner.connect(space, token, tapped, claim);
      link.conn = conn;
      links.set([...links.get(), link]);
      return {
        send(frame: Uint8Array) {
          let out: Uint8Array | "drop" = frame;
          const m = decodeMessage(frame);
          if (m.type === "commits" && !m.replace) {
            out = up ? up(frame, link.sent.length, link) : frame;
            const sent = out === "drop" ? m : decodeMessage(out);
            if (sent.type === "commits") {
              const seqs = sent.commits.map((c) => decodeSealedCommit(c).header.seq);
              sent.commits.forEach((c, i) => link.sizes.set(seqs[i]!, c.length));
              link.sent.push(seqs);
            }
            changed();
          }
          if (out !== "drop") conn.send(out);
        },
        get bufferedAmount() {
          return conn.bufferedAmount;
        },
        close: (reason?: string) => conn.close(reason),
      };
    },
  };
  const release = () => {
    state.holdAcks = false;
    for (const deliver of held.splice(0)) deliver();
  };
  return { transport, links, state, release };
}

/** `count` commits of one record each with a note of `bytes` characters: about that many bytes sealed. */
async function writeCommits(db: Awaited<ReturnType<typeof device>>["db"], space: { id: SpaceId }, count: number, bytes: number) {
  for (let k = 0; k < count; k++)
    await db.patients.insert({ name: `P${k}`, ward: "W", notes: `${k} `.padEnd(bytes, "abcdefgh") }, { space: space as never });
}

const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);
const seqsTo = (n: number, from = 1) => Array.from({ length: n - from + 1 }, (_, i) => i + from);
const relayFile = (relay: RelayHarness) => relay.sqliteFile;

describe("an upload of many commits", () => {
  it("keeps several frames in flight: every frame within the window leaves before any ack is read", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("window");
    const space = await a.db.createSpace({ name: "Window" });
    // 24 commits of about 120 KB: about 3 MB, three frames of at most ~1 MB, well within the window.
    await writeCommits(a.db, space, 24, 120_000);
    const t = tap(relay.url);
    t.state.holdAcks = true;
    a.online(relay.url, t.transport);
    const uploading = (ls: readonly Link[]) => ls.find((l) => l.sent.length > 0);
    const link = uploading(
      await waitFor(
        t.links,
        (ls) => (uploading(ls)?.sent.flat().length ?? 0) === 24,
        60_000,
        "all 24 commits sent with no ack read",
      ),
    );
    expect(link!.sent.length).toBeGreaterThanOrEqual(3);
    expect(link!.sent.flat()).toEqual(seqsTo(24));
    // Nothing counts as uploaded before its ack is read, though the relay may have stored it all.
    expect(a.db.status.get().pendingCommits).toBe(24);
    t.release();
    await relayAcknowledged(a.db, space.id, 60_000);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 30_000, "nothing pending");
    expect(storedSeqs(relayFile(relay), space.id, a.db.deviceId)).toEqual(seqsTo(24));
  }, 180_000);

  it("refuses a commit damaged in the middle of the window alone: the ones before it stored, the rest sent again", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("refused");
    const space = await a.db.createSpace({ name: "Refused" });
    await writeCommits(a.db, space, 24, 120_000);
    let damagedSeq = 0;
    let damagedOn: Link | undefined;
    // The fourth commit of the second frame of the first upload loses a bit of its signature.
    const t = tap(relay.url, (frame, index, link) => {
      const m = decodeMessage(frame);
      if (damagedSeq !== 0 || index !== 1 || m.type !== "commits") return frame;
      damagedOn = link;
      const commits = m.commits.map((c) => c.slice());
      const victim = commits[3]!;
      victim[victim.length - 1]! ^= 0x01;
      damagedSeq = decodeSealedCommit(victim).header.seq;
      return encodeMessage({ ...m, commits });
    });
    a.online(relay.url, t.transport);
    await relayAcknowledged(a.db, space.id, 60_000);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 30_000, "nothing pending");
    expect(damagedSeq).toBeGreaterThan(4);
    const first = damagedOn!;
    // The relay named the damaged commit alone, and acknowledged the commits before it in its frame.
    const errors = first.received.filter((m) => m.type === "error");
    expect(errors.map((m) => m.type === "error" && [m.code, m.seq])).toContainEqual(["signature", damagedSeq]);
    const acked = first.received.flatMap((m) => (m.type === "ack" ? m.entries.map((e) => e.seq) : []));
    expect(acked).toContain(damagedSeq - 1);
    // Every commit is stored once, intact (the relay checks each signature), none was lost or skipped.
    expect(storedSeqs(relayFile(relay), space.id, a.db.deviceId)).toEqual(seqsTo(24));
    const again = t.links.get().flatMap((l) => l.sent.flat());
    expect(again.filter((s) => s === damagedSeq).length).toBeGreaterThanOrEqual(2);
  }, 180_000);

  it("sends again exactly what the relay did not store when the connection drops with frames in flight", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("drop");
    const space = await a.db.createSpace({ name: "Drop" });
    await writeCommits(a.db, space, 24, 120_000);
    // The first connection delivers two frames and loses the others; once the relay acknowledged the
    // two (acks the engine does not read yet), the connection drops.
    let cut: Link | undefined;
    const t = tap(relay.url, (frame, index, link) => {
      cut ??= link;
      return link === cut && index >= 2 ? "drop" : frame;
    });
    t.state.holdAcks = true;
    a.online(relay.url, t.transport, { baseMs: 20, maxMs: 200 });
    const acks = (l: Link | undefined) => l?.received.filter((m) => m.type === "ack").length ?? 0;
    await waitFor(t.links, () => acks(cut) >= 2 && (cut?.sent.length ?? 0) >= 3, 60_000, "two frames acknowledged");
    const link = cut;
    link!.conn.close("test: dropped mid-window");
    const after = (ls: readonly Link[]) => ls.slice(ls.indexOf(cut!) + 1).filter((l) => l.space === space.id);
    await waitFor(t.links, (ls) => after(ls).length > 0, 30_000, "a new connection");
    t.release();
    await relayAcknowledged(a.db, space.id, 60_000);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 30_000, "nothing pending");
    const first = cut;
    const second = after(t.links.get())[0];
    const delivered = first!.sent.slice(0, 2).flat();
    // The second connection's welcome says what the relay stored: it is what the first delivered.
    const welcome = second!.received.find((m) => m.type === "welcome");
    const head =
      welcome?.type === "welcome"
        ? (welcome.vector.find((e) => toHex(e.device) === a.db.deviceId)?.seq ?? 0)
        : -1;
    expect(head).toBe(delivered.at(-1));
    // From there on every commit once, in order: nothing the relay held, nothing skipped.
    const resent = after(t.links.get()).flatMap((l) => l.sent.flat());
    expect(resent).toEqual(seqsTo(24, head + 1));
    expect(storedSeqs(relayFile(relay), space.id, a.db.deviceId)).toEqual(seqsTo(24));
  }, 180_000);
  it("keeps what is in flight within the window (8 MiB), and goes on as acks arrive", async () => {
    const window = 8 * 1024 * 1024;
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("bounded");
    const space = await a.db.createSpace({ name: "Bounded" });
    // 60 commits of about 190 KB sealed: about 11 MB, more than the window.
    await writeCommits(a.db, space, 60, 120_000);
    const outstanding = (link: Link) =>
      [...link.sizes].reduce((n, [seq, bytes]) => (seq > link.delivered ? n + bytes : n), 0);
    let most = 0;
    // Before each frame leaves: what was sent and not acknowledged to the engine stays under the window
    // (the engine counts an ack only once it reads it, later still, so this bound is implied by its own).
    const t = tap(relay.url, (frame, _index, link) => {
      most = Math.max(most, outstanding(link));
      return frame;
    });
    t.state.holdAcks = true;
    a.online(relay.url, t.transport);
    const uploading = (ls: readonly Link[]) => ls.find((l) => l.sent.length > 0);
    const sentBytes = (l: Link | undefined) => [...(l?.sizes.values() ?? [])].reduce((n, b) => n + b, 0);
    const links = await waitFor(
      t.links,
      (ls) => sentBytes(uploading(ls)) >= window,
      120_000,
      "the window filled with no ack read",
    );
    const link = uploading(links)!;
    t.release();
    await relayAcknowledged(a.db, space.id, 120_000);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 30_000, "nothing pending");
    expect(link.sent.flat()).toEqual(seqsTo(60));
    expect(most).toBeLessThan(window);
    // The window was used, not just respected: it was nearly full before the first ack was read.
    expect(most).toBeGreaterThan(window - 1024 * 1024);
    expect(storedSeqs(relayFile(relay), space.id, a.db.deviceId)).toEqual(seqsTo(60));
  }, 240_000);
});
