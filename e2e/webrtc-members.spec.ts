// Issue 13's removal outcome over WebRTC with the relay stopped. Three devices (three Chromium
// processes) join a space with single-use links through the relay and open data channels to each other;
// the relay stops; B loses its network (its data channels stay up, but nothing moves either way); the
// admin A removes B (the key rotates on A alone) and writes a canary; B, unaware, keeps writing; then
// B's network comes back. A and C refuse B's links with the `membership` error (an `AccessDenied` with
// reason `removed` on B), B's writes after the removal reach neither of them, the canary reaches C over
// WebRTC and nothing of it is anywhere in B's IndexedDB.
//
// WebRTC needs the private network namespace of scripts/rtc-netns.sh (see webrtc.spec.ts): elsewhere
// the spec skips with the reason.
import { chromium, expect, test, type Browser, type Page } from "@playwright/test";
import type { Database, SpaceId } from "@shoal/client";
import { CHROMIUM_ARGS, chromiumExecutable } from "../scripts/chromium.mjs";
import { isRelayStoppedNoise } from "./support/demo-device.ts";
import { HARNESS_PATH, uniqueDbName } from "./support/harness.ts";
import { netnsSkipReason } from "./support/netns.ts";
import { collectPageErrors } from "./support/page-errors.ts";
import { RelayProcess } from "./support/relay-process.ts";
import { readAllIndexedDb } from "./support/read-all-indexeddb.ts";

type Db = Database<{ notes: { title: string; body: string } }>;

/**
 * A network cut that leaves the WebRTC connections up (init script): while held, what the page's data
 * channels and peer connections receive (messages, closes, connection state changes) and what it sends
 * wait in order; `release` delivers them, then sends what waited (a send on a channel closed meanwhile
 * is lost, as on a real network). `context.setOffline` does not touch open data channels (TOOLCHAIN.md),
 * and closing the page would lose the links for good: with the relay stopped no new one can be signalled.
 * Every event and send is also traced (time, first bytes of the frame piece, state) in `__netLog`,
 * which a timed-out wait prints: the order of a refusal and a close is what goes wrong here.
 */
function installNetworkHold(): void {
  let held = false;
  const incoming: (() => void)[] = [];
  const outgoing: (() => void)[] = [];
  const log: string[] = [];
  (window as unknown as { __netLog: string[] }).__netLog = log;
  const t0 = performance.now();
  const note = (what: string, e: Event): void => {
    const data = (e as MessageEvent).data;
    const bytes = data instanceof ArrayBuffer ? [...new Uint8Array(data).slice(0, 4)].join(",") : "";
    const state = (e.target as RTCPeerConnection).connectionState ?? (e.target as RTCDataChannel).readyState;
    log.push(`${Math.round(performance.now() - t0)} ${held ? "held " : ""}${what} ${bytes} ${state}`);
  };
  const gate = (fn: () => void): void => {
    if (held) incoming.push(fn);
    else fn();
  };
  const wrap = (proto: object, name: string): void => {
    const d = Object.getOwnPropertyDescriptor(proto, name)!;
    const own = new WeakMap<object, unknown>();
    Object.defineProperty(proto, name, {
      configurable: true,
      enumerable: true,
      get(this: object) {
        return own.get(this) ?? null;
      },
      set(this: object, fn: ((e: Event) => void) | null) {
        own.set(this, fn);
        d.set!.call(this, fn ? (e: Event) => (note(name, e), gate(() => fn.call(this, e))) : null);
      },
    });
  };
  wrap(RTCDataChannel.prototype, "onmessage");
  wrap(RTCDataChannel.prototype, "onclose");
  wrap(RTCPeerConnection.prototype, "onconnectionstatechange");
  const send = RTCDataChannel.prototype.send as (this: RTCDataChannel, data: unknown) => void;
  (RTCDataChannel.prototype as { send: (data: unknown) => void }).send = function (
    this: RTCDataChannel,
    data: unknown,
  ) {
    log.push(
      `${Math.round(performance.now() - t0)} ${held ? "held " : ""}send ${[...(data as Uint8Array).slice(0, 4)].join(",")} ${this.readyState}`,
    );
    if (!held) return send.call(this, data);
    outgoing.push(() => {
      try {
        send.call(this, data);
      } catch {
        // The channel closed while the network was cut: what it carried is lost.
      }
    });
  };
  (window as unknown as { __netHold: { hold(): void; release(): number } }).__netHold = {
    hold: () => void (held = true),
    release: () => {
      held = false;
      const n = incoming.length + outgoing.length;
      for (const fn of incoming.splice(0)) fn();
      for (const fn of outgoing.splice(0)) fn();
      return n;
    },
  };
}

interface Device {
  name: string;
  page: Page;
  errors: string[];
  id: string;
}

/** Every device opened so far, whose WebRTC traces a timed-out wait prints. */
const devices: Device[] = [];

async function openDevice(browser: Browser, origin: string, name: string): Promise<Device> {
  const context = await browser.newContext({ baseURL: origin });
  await context.addInitScript(installNetworkHold);
  const page = await context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(HARNESS_PATH);
  await page.waitForFunction(() => window.__shoalReady === true);
  const id = await page.evaluate(async (dbName) => {
    const db = await window.__shoal.client.openDatabase({
      name: dbName,
      collections: { notes: { indexes: "id, title", text: ["body"] } },
      persist: false,
    });
    window.__e2e = { db };
    return db.deviceId as string;
  }, uniqueDbName(name));
  const device = { name, page, errors, id };
  devices.push(device);
  return device;
}

async function startSync(d: Device): Promise<void> {
  await d.page.evaluate(() => {
    const db = window.__e2e!.db as Db;
    db.sync({ relay: location.origin, backoff: { baseMs: 100, maxMs: 1000 }, webrtc: {} });
  });
}

/** Waits, checking in the page, until the device's status passes `what` (`peers`: links to those ids). */
async function until(
  d: Device,
  label: string,
  what: { peers: string[] } | { noPeer: string } | "relayDown" | "relaySynced" | "nothingPending" | "refused",
  timeout = 30_000,
): Promise<void> {
  await d.page
    .waitForFunction(
      (what) => {
        const s = (window.__e2e!.db as Db).status.get();
        const peers = s.transports.filter((t) => t.kind === "webrtc");
        if (what === "relayDown")
          return s.transports.filter((t) => t.kind === "relay").every((t) => t.state !== "connected");
        if (what === "relaySynced")
          return s.transports.some((t) => t.kind === "relay" && t.state === "connected" && t.lastSyncedAt);
        if (what === "nothingPending") return s.pendingCommits === 0;
        if (what === "refused")
          return (
            peers.some((t) => t.state === "refused") &&
            s.lastError?.code === "AccessDenied" &&
            s.lastError.reason === "removed"
          );
        if ("noPeer" in what) return !peers.some((t) => t.label === what.noPeer.slice(0, 8));
        return what.peers.every((p) =>
          peers.some((t) => t.label === p.slice(0, 8) && t.state === "connected"),
        );
      },
      what,
      { timeout, polling: 50 },
    )
    .catch(async (e: Error) => {
      for (const p of devices)
        console.log(
          p.name,
          await p.page
            .evaluate(() => (window as unknown as { __netLog: string[] }).__netLog.slice(-40).join("\n"))
            .catch(() => ""),
        );
      const status = await d.page
        .evaluate(() => JSON.stringify((window.__e2e!.db as Db).status.get()))
        .catch(() => "(unreadable)");
      throw new Error(`${d.name}: timed out waiting for ${label}: ${e.message}\nstatus: ${status}`);
    });
}

async function insert(d: Device, space: string, title: string, body = ""): Promise<void> {
  await d.page.evaluate(
    ([space, title, body]) =>
      (window.__e2e!.db as Db).notes.insert({ title, body }, { space: space as SpaceId }),
    [space, title, body] as const,
  );
}

async function titles(d: Device): Promise<string[]> {
  return d.page.evaluate(async () =>
    (await (window.__e2e!.db as Db).notes.orderBy("title").toArray()).map((n) => n.title as string),
  );
}

/** What `d` holds of `device`'s commits in the space (its vector entry). */
async function heldOf(d: Device, space: string, device: string): Promise<number> {
  return d.page.evaluate(
    async ([space, device]) =>
      (await (window.__e2e!.db as Db).vector([space as SpaceId]))[space]?.[device] ?? 0,
    [space, device] as const,
  );
}

test("a device removed while cut off is refused by its WebRTC peers with the relay stopped, and gets nothing written after", async ({}, testInfo) => {
  const reason = netnsSkipReason("webrtc-members.spec.ts");
  test.skip(reason !== undefined, reason ?? "");
  test.setTimeout(180_000);
  const started = Date.now();

  const relay = new RelayProcess();
  await relay.start();
  const launch = () => chromium.launch({ executablePath: chromiumExecutable(), args: [...CHROMIUM_ARGS] });
  const browsers = [await launch(), await launch(), await launch()];
  try {
    const a = await openDevice(browsers[0]!, relay.url, "admin");
    const b = await openDevice(browsers[1]!, relay.url, "removed");
    const c = await openDevice(browsers[2]!, relay.url, "colleague");

    // A makes the space and two single-use links; the relay knows the log before anyone redeems.
    const { space, toB, toC } = await a.page.evaluate(async () => {
      const db = window.__e2e!.db as Db;
      const s = await db.createSpace({ name: "North Clinic" });
      const toB = await db.invite(s, { role: "writer", me: "Dr. Admin" });
      const toC = await db.invite(s, { role: "writer" });
      return { space: s.id as string, toB, toC };
    });
    await startSync(a);
    // Acknowledged by the relay (pending is only counted once connected and synced).
    await until(a, "the relay to hold its log", "relaySynced");
    await until(a, "the relay to hold its log", "nothingPending");
    for (const [d, link, name] of [
      [b, toB, "Nurse B"],
      [c, toC, "Nurse C"],
    ] as const) {
      await d.page.evaluate(
        ([link, name]) => (window.__e2e!.db as Db).join(link, { relay: location.origin, name }),
        [link, name] as const,
      );
      await startSync(d);
    }

    // All three converge, and each has a data channel to both others.
    await insert(a, space, "from A");
    await insert(b, space, "from B before");
    await insert(c, space, "from C");
    const all = ["from A", "from B before", "from C"];
    for (const d of [a, b, c]) await expect.poll(() => titles(d), { timeout: 30_000 }).toEqual(all);
    await until(a, "links to B and C", { peers: [b.id, c.id] });
    await until(b, "links to A and C", { peers: [a.id, c.id] });
    await until(c, "links to A and B", { peers: [a.id, b.id] });

    // The relay stops for good: from here on, only the data channels carry anything.
    await relay.stop();
    for (const d of [a, b, c]) await until(d, "the relay to be gone", "relayDown");

    // B's network is cut; A removes B (a rotation, on A alone) and writes a canary after it.
    await b.page.evaluate(() => (window as unknown as { __netHold: { hold(): void } }).__netHold.hold());
    const bSeqAtRemoval = await heldOf(a, space, b.id);
    await a.page.evaluate(
      async ([space, device]) => {
        const db = window.__e2e!.db as Db;
        const view = await new Promise<{
          members: readonly { person: string; devices: readonly { device: string }[] }[];
        }>((ok) => {
          const sub = db.members(space as SpaceId).subscribe((v) => {
            if (!v.members.some((m) => m.devices.some((d) => d.device === device))) return;
            queueMicrotask(() => sub.unsubscribe());
            ok(v);
          });
        });
        const person = view.members.find((m) => m.devices.some((d) => d.device === device))!.person;
        await db.remove(space as SpaceId, { person });
      },
      [space, b.id] as const,
    );
    const canary = `canary-rtc-${Math.random().toString(36).slice(2, 10)}`;
    await insert(a, space, "from A after removal", canary);

    // C gets the removal and the canary from A over WebRTC (and opens it: it holds the new key); A and
    // C both drop their link to B.
    await expect
      .poll(() => titles(c), { timeout: 30_000 })
      .toEqual(["from A", "from A after removal", "from B before", "from C"]);
    expect(
      await c.page.evaluate(
        async () =>
          (await (window.__e2e!.db as Db).notes.where("title").equals("from A after removal").first())?.body,
      ),
    ).toBe(canary);
    await until(a, "its link to B to end", { noPeer: b.id });
    await until(c, "its link to B to end", { noPeer: b.id });

    // B, cut off and unaware, keeps writing; then its network comes back.
    await insert(b, space, "from B after removal 1");
    await insert(b, space, "from B after removal 2");
    const waited = await b.page.evaluate(() =>
      (window as unknown as { __netHold: { release(): number } }).__netHold.release(),
    );
    expect(waited).toBeGreaterThan(0);
    await until(b, "its peers' refusal", "refused");
    const bStatus = await b.page.evaluate(() => {
      const s = (window.__e2e!.db as Db).status.get();
      return {
        state: s.state,
        lastError: s.lastError,
        peers: s.transports.filter((t) => t.kind === "webrtc"),
      };
    });
    // Each refusing peer's link says so (the overall state stays about the relay, which is down).
    expect(
      bStatus.peers
        .filter((p) => p.state === "refused")
        .map((p) => p.label)
        .sort(),
    ).toEqual([a.id.slice(0, 8), c.id.slice(0, 8)].sort());

    // B's writes after the removal reach neither A nor C; A's canary is nowhere in B's IndexedDB.
    await until(a, "C's link still up", { peers: [c.id] });
    await insert(c, space, "from C after removal");
    await expect
      .poll(() => titles(a), { timeout: 30_000 })
      .toEqual(["from A", "from A after removal", "from B before", "from C", "from C after removal"]);
    for (const d of [a, c]) {
      expect(await heldOf(d, space, b.id)).toBe(bSeqAtRemoval);
      expect(await titles(d)).not.toContain("from B after removal 1");
    }
    expect(await titles(b)).toEqual([
      "from A",
      "from B after removal 1",
      "from B after removal 2",
      "from B before",
      "from C",
    ]);
    const stored = await readAllIndexedDb(b.page);
    expect(stored.length).toBeGreaterThan(1000);
    expect(stored).not.toContain(canary);

    const summary = `B refused by its peers: ${JSON.stringify(bStatus.peers.map((p) => `${p.label} ${p.state}`))}, lastError ${bStatus.lastError?.code}/${bStatus.lastError?.reason}, state ${bStatus.state}; refused by A as ${a.id < b.id ? "client" : "responder"}, by C as ${c.id < b.id ? "client" : "responder"}; ${waited} held events on B; ${((Date.now() - started) / 1000).toFixed(1)} s`;
    console.log(`webrtc-members: ${summary}`);
    testInfo.annotations.push({ type: "webrtc-members", description: summary });
    const unexpected = [...a.errors, ...b.errors, ...c.errors].filter((e) => !isRelayStoppedNoise(e));
    expect(unexpected).toEqual([]);
  } finally {
    await Promise.all(browsers.map((br) => br.close()));
    await relay.dispose();
  }
});
