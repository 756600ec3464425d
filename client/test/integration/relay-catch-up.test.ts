import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  countingTransport,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  relayTransport,
  type Patient,
} from "../relay-harness.ts";

const RECORDS = 10_000;
const PER_TRANSACTION = 100;
const NEW_COMMITS = 10;
/** Allowance for everything but the commits' bytes: welcome, pull replies' headers, acks, pongs. */
const CONSTANT_BYTES = 2048;

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

describe("catch-up cost through the relay process", () => {
  it(`a replica of ${RECORDS} records that misses ${NEW_COMMITS} commits receives under 4x their sealed bytes + ${CONSTANT_BYTES} B`, async () => {
    const started = Date.now();
    const laps: string[] = [];
    const lap = (what: string) => laps.push(`${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await openDevice<{ patients: Patient }>("a", patientCollections);
    const b = await openDevice<{ patients: Patient }>("b", patientCollections);
    const space = await a.db.createSpace({ name: "Big ward" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));

    const ids: string[] = [];
    for (let t = 0; t < RECORDS / PER_TRANSACTION; t++) {
      await a.db.transact(async (tx) => {
        for (let i = 0; i < PER_TRANSACTION; i++) {
          const n = t * PER_TRANSACTION + i;
          ids.push(
            await tx.patients.insert(
              { name: `Patient ${n}`, ward: `W${n % 17}`, notes: `Admitted ${n}.` },
              { space },
            ),
          );
        }
      });
    }
    lap(`${RECORDS} records written on a`);
    a.online(relay.url);
    b.online(relay.url);
    await relayAcknowledged(a.db, space.id, 60_000);
    lap("a's upload acknowledged");
    await waitFor(
      b.db.patients.live((c) => c.count()),
      (n) => n === RECORDS,
      90_000,
      `b to receive ${RECORDS} records`,
    );
    await waitFor(b.db.status, (s) => s.state === "synced", 30_000, "b synced");
    lap(`b holds ${RECORDS}`);

    b.offline();
    const before = (await a.db.vector([space.id]))[space.id]![a.db.deviceId]!;
    for (let i = 0; i < NEW_COMMITS; i++) {
      await a.db.patients.update(ids[i * 997]!, (p) => void (p.ward = "Discharged"));
    }
    await relayAcknowledged(a.db, space.id); // so they are sealed, too
    const sealed = (await a.db.replica.dexie
      .table("_sealed")
      .where("[space+device+seq]")
      .between(
        [space.id, a.db.deviceId, before + 1],
        [space.id, a.db.deviceId, before + NEW_COMMITS],
        true,
        true,
      )
      .toArray()) as { seq: number; bytes: Uint8Array }[];
    expect(sealed.map((r) => r.seq)).toEqual(Array.from({ length: NEW_COMMITS }, (_, i) => before + 1 + i));
    const sealedBytes = sealed.reduce((s, r) => s + r.bytes.byteLength, 0);

    const t = countingTransport(relayTransport(relay.url));
    b.online(relay.url, t);
    await waitFor(
      b.db.patients.live((c) => c.where("ward").equals("Discharged").count()),
      (n) => n === NEW_COMMITS,
      30_000,
      "b to receive the 10 updates",
    );
    await waitFor(b.db.status, (s) => s.state === "synced", 30_000, "b synced again");
    expect(await b.db.vector([space.id])).toEqual(await a.db.vector([space.id]));
    lap("b caught up");

    const received = t.receivedBytes();
    const bound = 4 * sealedBytes + CONSTANT_BYTES;
    console.info(
      `[catch-up] ${laps.join("; ")}\n[catch-up] b received ${received} B in ${t.connections.reduce((s, c) => s + c.receivedFrames, 0)} frames over ` +
        `${t.connections.length} connections (sent ${t.sentBytes()} B); the ${NEW_COMMITS} sealed commits are ${sealedBytes} B; bound ${bound} B`,
    );
    expect(received).toBeGreaterThanOrEqual(sealedBytes);
    expect(received).toBeLessThan(bound);
  }, 180_000);
});
