// Issue 12, items 1, 2 and 7 through the real relay process: a member (Mallory, who holds the space
// key) uploads hand-built commits; the victim must quarantine each alone, report it once, keep its own
// data, and go on syncing with everyone, Mallory's later honest commits included.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import type { Database } from "../../src/index.ts";
import { DEFAULT_CONTENT_LIMITS } from "../../src/protocol/limits.ts";
import type { SyncStatus } from "../../src/status/sync-status.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  type Patient,
} from "../relay-harness.ts";
import { deepCreation, forgeCommits, forgedPlaintext, manyKeysChange } from "./forge.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);
const names = (db: Db) => db.patients.live((c) => c.orderBy("name").toArray());

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** Victim, Carol (honest) and Mallory share a space through a relay process; the victim has a private row. */
async function clinic() {
  const relay = await RelayHarness.start(["--quiet"]);
  const [victim, carol, mallory] = await Promise.all([device("victim"), device("carol"), device("mallory")]);
  const space = await victim.db.createSpace({ name: "Shared ward" });
  const link = await victim.db.invite(space, "https://app.example/");
  await carol.db.join(link);
  await mallory.db.join(link);
  const privateId = await victim.db.patients.insert({ name: "Private", ward: "P", notes: "mine" });
  await victim.db.patients.insert({ name: "Shared", ward: "S", notes: "" }, { space });
  for (const d of [victim, carol, mallory]) d.online(relay.url);
  await waitFor(names(mallory.db), (r) => r.length === 1, 30_000, "mallory to receive Shared");
  // Every distinct report of a quarantined commit the victim's status carried.
  const reports: NonNullable<SyncStatus["lastError"]>[] = [];
  const sub = victim.db.status.subscribe((s) => {
    if (s.lastError?.code === "CommitQuarantined" && !reports.includes(s.lastError))
      reports.push(s.lastError);
  });
  return { relay, victim, carol, mallory, space, privateId, reports, stop: () => sub.unsubscribe() };
}

/** Mallory then Carol commit honestly; the victim and Carol must receive both (nobody is stuck). */
async function othersStillSync(c: Awaited<ReturnType<typeof clinic>>, tag: string): Promise<void> {
  await c.mallory.db.patients.insert({ name: `Mallory ${tag}`, ward: "S", notes: "" }, { space: c.space });
  await c.carol.db.patients.insert({ name: `Carol ${tag}`, ward: "S", notes: "" }, { space: c.space });
  for (const [who, d] of [
    ["victim", c.victim],
    ["carol", c.carol],
  ] as const) {
    await waitFor(
      names(d.db),
      (r) => r.some((p) => p.name === `Mallory ${tag}`) && r.some((p) => p.name === `Carol ${tag}`),
      30_000,
      `${who} to receive the honest commits after the hostile ones (${tag})`,
    );
  }
}

async function expectVictimIntact(c: Awaited<ReturnType<typeof clinic>>): Promise<void> {
  const mine = await c.victim.db.patients.get(c.privateId);
  expect(mine).toMatchObject({ id: c.privateId, name: "Private", ward: "P", notes: "mine" });
  const shared = await c.victim.db.patients.where("name").equals("Shared").toArray();
  expect(shared.length).toBe(1);
}

describe("hostile commits through the relay process", () => {
  it("a 20,000-deep creation is quarantined alone, reported once, and the space keeps syncing", async () => {
    const c = await clinic();
    await forgeCommits(c.mallory.db, c.space.id, [forgedPlaintext([{ createJson: deepCreation(20_000) }])]);
    await othersStillSync(c, "1");
    await expectVictimIntact(c);
    const q = await c.victim.db.quarantine();
    expect(q.map((x) => [x.device, x.seq, x.reason])).toEqual([[c.mallory.db.deviceId, 1, "limits"]]);
    expect(await c.victim.db.patients.where("name").equals("deep").count()).toBe(0);
    // Reconnecting does not bring it back nor report it again.
    c.victim.db.reconnect();
    await othersStillSync(c, "2");
    expect(c.reports.length).toBe(1);
    expect(c.reports[0]!.message).toContain(`${c.space.id}`);
    c.stop();
  });

  it("a remote creation with an `id` field cannot overwrite a row of the victim's private space", async () => {
    const c = await clinic();
    const takeover = `[{"id":"${c.privateId}","name":"pwned","notes":"","ward":"P"},["notes"],[]]`;
    await forgeCommits(c.mallory.db, c.space.id, [
      forgedPlaintext([{ createJson: takeover, paths: ["id", "name", "notes", "ward"] }]),
    ]);
    await othersStillSync(c, "1");
    await expectVictimIntact(c);
    expect(await c.victim.db.patients.where("name").equals("pwned").count()).toBe(0);
    expect(await c.carol.db.patients.where("name").equals("pwned").count()).toBe(0);
    const q = await c.victim.db.quarantine(c.space);
    expect(q.map((x) => x.reason)).toEqual(["reserved"]);
    expect(c.reports.length).toBe(1);
    c.stop();
  });

  it("a change one operation over MAX_OPS_PER_CHANGE is quarantined alone; a change at it applies", async () => {
    const c = await clinic();
    const cap = DEFAULT_CONTENT_LIMITS.maxOpsPerChange;
    const atCap = "01890000-0000-7000-8000-0000000a7ca9";
    await forgeCommits(c.mallory.db, c.space.id, [
      forgedPlaintext([{ id: atCap, changes: [manyKeysChange(cap)], paths: ["k0"] }]),
      forgedPlaintext([{ changes: [manyKeysChange(cap + 1)], paths: ["k0"] }]),
    ]);
    await othersStillSync(c, "1");
    const row = (await c.victim.db.patients.get(atCap)) as Record<string, unknown> | undefined;
    expect(row?.[`k${cap - 1}`]).toBe(cap - 1);
    await expectVictimIntact(c);
    const q = await c.victim.db.quarantine();
    expect(q.map((x) => [x.reason, x.seq])).toEqual([["limits", 2]]);
    expect(q[0]!.message).toContain(`${cap + 1} operations`);
    expect(c.reports.length).toBe(1);
    c.stop();
  });

  it("a 40,000-key change is refused by its op count without applying it; the longest stall is printed", async () => {
    const c = await clinic();
    const change = manyKeysChange(40_000);
    await forgeCommits(c.mallory.db, c.space.id, [forgedPlaintext([{ changes: [change], paths: ["k0"] }])]);
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    await othersStillSync(c, "1");
    delay.disable();
    console.log(
      `40,000-key change (${change.length} bytes) through the relay: longest event-loop stall ${(delay.max / 1e6).toFixed(0)} ms`,
    );
    await expectVictimIntact(c);
    const q = await c.victim.db.quarantine();
    expect(q.map((x) => x.reason)).toEqual(["limits"]);
    expect(q[0]!.message).toContain("40000 operations");
    expect(c.reports.length).toBe(1);
    c.stop();
  });
});
