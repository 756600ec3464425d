// Peer links refuse devices their own membership log removed (PROTOCOL.md 10, "Peer links"): at the
// hello, and on a link already open when the removal lands. The refused device gets one fatal
// `membership` error (an `AccessDenied` on its side) and nothing of the space.
import { afterEach, describe, expect, it } from "vitest";
import { AccessDenied, type ShoalError, type Space } from "../../src/index.ts";
import { adminAndWriter, everything, type MemberDb } from "../member-devices.ts";
import { PeerGate, peerAdmission, peerRefusalFrame, peerRefusalIn } from "../../src/peer/peer-admission.ts";
import { decodeMessage, encodeMessage, fromHex, type Message } from "../../src/protocol/index.ts";
import { dataChannelPair } from "../../src/transports/data-channel-pair.ts";
import { openDataChannelLink } from "../../src/transports/webrtc-transport.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";
import { waitFor } from "../wait-for.ts";
import { peerResponder, peerSession } from "../peer-link.ts";

type Db = MemberDb;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** `server` answers `peer` over one end of an in-memory data channel, gated by its own log. */
async function responder(
  server: Db,
  peer: string,
  space: Space,
  channel: ReturnType<typeof dataChannelPair>[1],
) {
  const states: string[] = [];
  const r = await peerResponder(
    server,
    peer,
    space,
    channel,
    { state: (s) => states.push(s), error: () => {} },
    () => new PeerGate(server.replica.dexie).check(space.id, peer),
  );
  const sub = server.live(() => server.vector()).subscribe(() => r.poke());
  r.start();
  cleanup.push(() => {
    sub.unsubscribe();
    r.stop();
  });
  return { responder: r, states };
}

describe("peer links refuse removed devices", () => {
  it("admits members, invitees while an invitation is open, and refuses removed devices and strangers", async () => {
    const { a, b, space, bPerson } = await adminAndWriter();
    const stranger = "ab".repeat(16);
    const now = Date.now();
    expect(peerAdmission(undefined, stranger, now)).toBeUndefined(); // a space without a log: key holders
    let state = await readMembership(a.replica.dexie, space.id);
    expect(peerAdmission(state, b.deviceId, now)).toBeUndefined();
    expect(peerAdmission(state, stranger, now)).toBe("not-member"); // the single-use link is spent
    await a.invite(space, { role: "reader" });
    state = await readMembership(a.replica.dexie, space.id);
    expect(peerAdmission(state, stranger, now)).toBeUndefined(); // it may be joining by the open one
    await a.remove(space, { person: bPerson });
    state = await readMembership(a.replica.dexie, space.id);
    expect(peerAdmission(state, b.deviceId, now)).toBe("removed");
    expect(await new PeerGate(a.replica.dexie).check(space.id, b.deviceId)).toBe("removed");
  });

  it("a removed device's hello gets one fatal membership error and nothing of the space", async () => {
    const { a, b, space, bPerson } = await adminAndWriter();
    await a.remove(space, { person: bPerson });
    await a.patients.insert({ name: "After rotation", notes: "canary-refusal-7d1e" }, { space });

    const [cb, ca] = dataChannelPair();
    const { states } = await responder(a, b.deviceId, space, ca);
    const got: Message[] = [];
    const closed = new Promise<void>((resolve) => {
      const conn = openDataChannelLink(cb, {
        onOpen: () =>
          conn.send(
            encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(b.deviceId, 16) }),
          ),
        onMessage: (f) => got.push(decodeMessage(f)),
        onClose: () => resolve(),
      });
    });
    await Promise.race([
      closed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`A kept the link: ${got.length} frame(s)`)), 10_000),
      ),
    ]);
    expect(got).toHaveLength(1);
    const refusal = peerRefusalIn(got[0]!);
    expect(refusal).toBeInstanceOf(AccessDenied);
    expect(refusal!.reason).toBe("removed");
    expect(got[0]).toMatchObject({ type: "error", code: "membership", fatal: true });
    expect(states.at(-1)).toBe("offline");
  });

  it("a link open when the removal lands carries neither the removal nor what follows it", async () => {
    const { a, b, space, bPerson } = await adminAndWriter();
    const [cb, ca] = dataChannelPair();
    const errors: ShoalError[] = [];
    const bStates: string[] = [];
    const session = await peerSession(b, a, space, cb, {
      state: (s) => bStates.push(s),
      error: (e) => errors.push(e),
    });
    await responder(a, b.deviceId, space, ca);
    session.start();
    cleanup.push(() => session.stop());
    // Live first: A's write reaches B over the link.
    await a.patients.insert({ name: "While a member", notes: "" }, { space });
    await waitFor(
      b.live(() => b.patients.toArray()),
      (ps) => ps.some((p) => p.name === "While a member"),
      20_000,
      "B to receive A's write over the link",
    );
    const heldBefore = (await b.vector([space.id]))[space.id]![a.deviceId]!;

    await a.remove(space, { person: bPerson });
    await a.patients.insert({ name: "After rotation", notes: "canary-live-link-3f90" }, { space });
    await until(() => bStates.includes("offline"), 20_000, "A to close B's link");
    const refusal = errors.map((e) => e.message).find((m) => m.includes("removed"));
    expect(refusal, errors.map((e) => `${e.code}: ${e.message}`).join("\n")).toBeDefined();
    // Nothing after the removal went over: not the removal, not the rotation, not the canary.
    expect((await b.vector([space.id]))[space.id]![a.deviceId]).toBe(heldBefore);
    expect(await everything(b)).not.toContain("canary-live-link-3f90");
  });

  it("a responder refused by its peer reports AccessDenied and ends as refused", async () => {
    const { a, b, space } = await adminAndWriter();
    const [cb, ca] = dataChannelPair();
    const errors: ShoalError[] = [];
    const states: string[] = [];
    const r = await peerResponder(b, a.deviceId, space, cb, {
      state: (s) => states.push(s),
      error: (e) => errors.push(e),
    });
    r.start();
    cleanup.push(() => r.stop());
    // The other end refuses at once, before any hello (as a peer whose log removed this device does),
    // and closes right behind it: the close must not overtake the refusal.
    const conn = openDataChannelLink(ca, {
      onOpen: () => {
        conn.send(peerRefusalFrame("removed"));
        conn.close("refused");
      },
      onMessage: () => {},
      onClose: () => {},
    });
    await until(() => states.includes("refused"), 10_000, "the responder to end as refused");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AccessDenied);
    expect((errors[0] as AccessDenied).reason).toBe("removed");
  });
});

/** Resolves once `test()` holds (checked every 10 ms: these hooks are callbacks, not observables). */
function until(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const t = setInterval(() => {
      if (test()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error(`Timed out waiting for ${what}.`));
      else return;
      clearInterval(t);
    }, 10);
  });
}
