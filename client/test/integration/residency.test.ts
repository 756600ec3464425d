// Data residency (issue 16 item 4) with two real relay processes, one per region: a space pinned to
// "eu" syncs through the eu relay, never reaches the us relay (the client refuses before sending and
// says so in `db.status`; the us relay refuses it at the upgrade), and a raw upload of its commits to
// the us relay is refused with the `residency` error code.
import Sqlite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  connect,
  connectReady,
  uploadCommits,
  type TestClient,
} from "../../../sync-server/test/ws-client.ts";
import { deriveRelayToken } from "../../src/crypto/keys.ts";
import { ResidencyRefused, type Database, type SpaceId } from "../../src/index.ts";
import { decodeBase64Url, fromHex, RESIDENCY_REFUSAL, toHex } from "../../src/protocol/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import type { Transport, TransportHandlers } from "../../src/transports/transport.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  relayTransport,
  type Patient,
} from "../relay-harness.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);
const raw: TestClient[] = [];
afterEach(async () => {
  for (const c of raw.splice(0)) c.ws.terminate();
  await closeAllDevices();
  await disposeAllRelays();
});

const CANARY = "Canary-EU-patient-5531";

function holds(relay: RelayHarness, text: string): boolean {
  const bytes = Buffer.from(text);
  return relay.dataFiles().some((f) => f.bytes.includes(bytes));
}

function storedCommits(relay: RelayHarness, space: string): number {
  const db = new Sqlite(relay.sqliteFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM commits WHERE space = ?").get(space) as { n: number }).n;
  } finally {
    db.close();
  }
}

async function rowOf(db: Db, space: SpaceId): Promise<SpaceRow> {
  return (await db.replica.dexie.table<SpaceRow>("_spaces").get(space))!;
}

describe("data residency with two relays of two regions", () => {
  it("an eu space syncs through the eu relay and never reaches the us relay", async () => {
    const [eu, us] = await Promise.all([
      RelayHarness.start(["--quiet", "--region", "eu"]),
      RelayHarness.start(["--quiet", "--region", "us"]),
    ]);
    expect(await (await fetch(`${eu.url}/healthz`)).json()).toMatchObject({ status: "ok", region: "eu" });
    const [a, b] = await Promise.all([device("res-a"), device("res-b")]);
    const space = await a.db.createSpace({ name: "EU Clinic", residency: "eu", me: "Dr. A" });
    expect(space.residency).toBe("eu");
    // The pin is in the signed log's create: every replica (and the relay) reads it from there.
    a.online(eu.url);
    const link = await a.db.invite(space, { role: "writer" });
    await relayAcknowledged(a.db, space.id);
    b.online(eu.url);
    await b.db.join(link, { name: "Nurse B", relay: eu.url });
    const id = await a.db.patients.insert({ name: CANARY, ward: "A", notes: "" }, { space });
    await waitFor(b.db.patients.live(), (r) => r.some((p) => p.id === id), 30_000, "b to get the patient");
    await b.db.patients.update(id, (p) => void (p.notes = "Seen in the EU."));
    await waitFor(
      a.db.patients.live((c) => c.get(id)),
      (p) => p?.notes === "Seen in the EU.",
      30_000,
      "a to get b's edit",
    );

    // Device a now also points at the us relay: its session refuses, and says why.
    a.offline();
    const stop = a.db.sync({ transports: [relayTransport(eu.url), relayTransport(us.url)] });
    try {
      const s = await waitFor(
        a.db.status,
        (st) =>
          st.lastError?.code === "ResidencyRefused" &&
          st.transports.some((t) => t.label.includes(String(us.port)) && t.state === "refused"),
        30_000,
        "the refusal in a's status",
      );
      expect(s.lastError!.message).toMatch(/must stay in region "eu"/);
      const viaEu = s.transports.find((t) => t.label.includes(String(eu.port)) && t.space === space.id);
      expect(viaEu?.state).not.toBe("refused");
      await a.db.patients.update(id, (p) => void (p.ward = "B"));
      await waitFor(
        b.db.patients.live((c) => c.get(id)),
        (p) => p?.ward === "B",
        30_000,
        "b gets a's later edit through eu",
      );
    } finally {
      stop();
    }
    // The us relay holds nothing of the space: not its id, not a commit.
    expect(holds(us, space.id)).toBe(false);
    expect(holds(eu, space.id)).toBe(true);
    expect(storedCommits(us, space.id)).toBe(0);
    expect(await us.metrics()).toMatch(/shoal_refusals_total\{reason="residency"\} [1-9]/);
  });

  it("the relay of another region refuses a raw upload of the space's commits", async () => {
    const [eu, us] = await Promise.all([
      RelayHarness.start(["--quiet", "--region", "eu"]),
      RelayHarness.start(["--quiet", "--region", "us"]),
    ]);
    const a = await device("res-raw");
    const space = await a.db.createSpace({ name: "EU Only", residency: "eu" });
    await a.db.patients.insert({ name: CANARY, ward: "A", notes: "" }, { space });
    a.online(eu.url);
    await relayAcknowledged(a.db, space.id);
    a.offline();
    const sealed = (await a.db.replica.dexie
      .table("_sealed")
      .where("[space+device+seq]")
      .between([space.id, a.db.deviceId, 1], [space.id, a.db.deviceId, 99])
      .toArray()) as { bytes: Uint8Array }[];
    expect(sealed.length).toBe(2); // the log's create (with the pin), then the patient
    const row = await rowOf(a.db, space.id);
    const token = decodeBase64Url(await deriveRelayToken(row.key, fromHex(space.id, 16)));
    const wsUrl = us.url.replace(/^http/, "ws");

    // Offering the pin: refused at the upgrade, before the space is registered.
    const pinned = await connect(wsUrl, space.id, token, {
      claim: row.claim,
      items: ["shoal-region.eu"],
    }).then(
      (c) => (raw.push(c), "opened"),
      (e: Error) => e.message,
    );
    expect(pinned).toMatch(/403/);
    const probe = await fetch(`${us.url}/sync/${space.id}/access?region=eu`, { method: "POST", body: "x" });
    expect(probe.status).not.toBe(204);

    // Without the pin (an old or hostile client): the relay reads it in the log's create and refuses.
    const c = await connectReady(wsUrl, space.id, token, toHex(crypto.getRandomValues(new Uint8Array(16))), {
      claim: row.claim,
    });
    raw.push(c);
    const { ack, error } = await uploadCommits(
      c,
      space.id,
      sealed.map((s) => s.bytes),
    );
    expect(ack.entries).toEqual([]);
    expect(error).toMatchObject({ code: "residency", fatal: false, seq: 1 });
    expect(error!.message).toMatch(/pinned to region "eu" and this relay is in region "us"/);
    expect(storedCommits(us, space.id)).toBe(0);
    expect(holds(us, CANARY)).toBe(false);
    // The eu relay took both.
    expect(storedCommits(eu, space.id)).toBe(2);
    expect(RESIDENCY_REFUSAL).toMatch(/not in the region/);
    expect(new ResidencyRefused("eu", "x").code).toBe("ResidencyRefused");
  });

  it("a relay that does not confirm the region (older, or no region) gets not even a hello", async () => {
    const a = await device("res-old");
    const space = await a.db.createSpace({ name: "EU Old", residency: "eu" });
    const sent: Uint8Array[] = [];
    let offered: readonly string[] = [];
    // A relay that accepts every connection and answers `shoal.1`, as relays before residency do.
    const oldRelay: Transport = {
      kind: "relay",
      label: "wss://old-relay.example",
      connect(to, _token, handlers: TransportHandlers, _claim, proofs = []) {
        // Only the pinned space's connections count (the device's other spaces may sync there).
        if (to !== space.id) return { send: () => {}, bufferedAmount: 0, close: () => {} };
        offered = proofs;
        let open = true;
        queueMicrotask(() => handlers.onOpen({ protocol: "shoal.1" }));
        return {
          send: (frame) => void (open && sent.push(frame)),
          bufferedAmount: 0,
          close: () => {
            if (!open) return;
            open = false;
            queueMicrotask(() => handlers.onClose("closed", 1000));
          },
        };
      },
    };
    const stop = a.db.sync({ transports: [oldRelay] });
    try {
      await waitFor(
        a.db.status,
        (st) =>
          st.lastError?.code === "ResidencyRefused" &&
          st.transports.find((t) => t.space === space.id)?.state === "refused",
        30_000,
        "the refusal",
      );
    } finally {
      stop();
    }
    expect(offered).toContain("shoal-region.eu");
    expect(sent).toEqual([]);
  });

  it("peers and files still carry a pinned space", async () => {
    const [a, b] = await Promise.all([device("res-file-a"), device("res-file-b")]);
    const eu = await RelayHarness.start(["--quiet", "--region", "eu"]);
    const space = await a.db.createSpace({ name: "EU Files", residency: "eu" });
    a.online(eu.url);
    const link = await a.db.invite(space, { role: "writer" });
    await relayAcknowledged(a.db, space.id);
    b.online(eu.url);
    await b.db.join(link, { name: "B", relay: eu.url });
    b.offline();
    a.offline();
    await a.db.patients.insert({ name: "By file", ward: "A", notes: "" }, { space });
    const file = await a.db.exportBundle({ space, since: await b.db.vector([space.id]) });
    await b.db.importBundle(file);
    expect((await b.db.patients.toArray()).map((p) => p.name)).toContain("By file");
  });
});
