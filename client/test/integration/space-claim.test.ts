// Issue 13 item 6: registering a space at a relay needs its creator's signature (PROTOCOL.md 1, "Space
// claims"). Real relay processes, real WebSockets, databases on fake-indexeddb.
import Sqlite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { deriveRelayToken } from "../../src/crypto/keys.ts";
import { sha256 } from "../../src/crypto/sha256.ts";
import type { Database, SpaceId, SyncStatus } from "../../src/index.ts";
import { generateIdentity } from "../../src/identity/device-identity.ts";
import { signBytes, SIGNING_LABELS } from "../../src/identity/signing.ts";
import {
  decodeBase64Url,
  decodeSpaceClaim,
  encodeSpaceClaim,
  fromHex,
  spaceClaimSigned,
  toHex,
} from "../../src/protocol/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { formatInviteLink, parseInviteLink } from "../../src/spaces/invite-link.ts";
import { deriveSpaceId } from "../../src/spaces/space-claim.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  type Patient,
} from "../relay-harness.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** Resolves once `db` holds a patient called `name` (from any device). */
async function sees(db: Db, name: string): Promise<void> {
  await waitFor(
    db.patients.live((c) => c.where("name").equals(name).toArray()),
    (rows) => rows.length > 0,
    30_000,
    `a patient called ${name}`,
  );
}

const stateOf = (st: SyncStatus, space: SpaceId) => st.transports.find((t) => t.space === space)?.state;

/** The creator key the relay's sqlite file keeps for `space` (hex), or undefined. */
function storedCreator(relay: RelayHarness, space: SpaceId): string | undefined {
  const db = new Sqlite(relay.sqliteFile, { readonly: true, fileMustExist: true });
  try {
    const raw = db.prepare("SELECT creator FROM spaces WHERE space = ?").pluck().get(space) as
      Buffer | null | undefined;
    return raw ? toHex(new Uint8Array(raw)) : undefined;
  } finally {
    db.close();
  }
}

async function spaceRow(db: Db, space: SpaceId): Promise<SpaceRow> {
  const row = await db.replica.dexie.table<SpaceRow>("_spaces").get(space);
  if (!row) throw new Error(`no space ${space}`);
  return row;
}

describe("space claims", () => {
  it("gives new spaces, the private one included, ids derived from the creator's key, with a claim", async () => {
    const a = await device("creator");
    const identity = a.db.replica.identity!;
    const space = await a.db.createSpace({ name: "Ward" });
    for (const id of [space.id, a.db.privateSpace]) {
      const parts = decodeSpaceClaim((await spaceRow(a.db, id)).claim!)!;
      expect(toHex(parts.creator)).toBe(toHex(identity.signingPublic));
      expect(await deriveSpaceId(parts.creator, parts.salt)).toBe(id);
    }
    // The invitation link carries the claim, and the joiner keeps it with the space.
    const link = await a.db.invite(space, "https://app.example/");
    expect(parseInviteLink(link).claim).toEqual((await spaceRow(a.db, space.id)).claim);
    const b = await device("joiner");
    await b.db.join(link);
    expect((await spaceRow(b.db, space.id)).claim).toEqual((await spaceRow(a.db, space.id)).claim);
  });

  it("after a relay wipe, a joiner holding the claim from its link registers the space again", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("creator");
    const b = await device("joiner");
    const space = (await a.db.createSpace({ name: "Ward" })).id;
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    a.online(relay.url);
    b.online(relay.url);
    await a.db.patients.insert({ name: "Before", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space);
    await sees(b.db, "Before");
    expect(storedCreator(relay, space)).toBe(toHex(a.db.replica.identity!.signingPublic));

    a.offline();
    b.offline();
    await relay.stop();
    relay.wipe();
    await relay.restart();
    // Only the joiner comes back first: it has no private key of the creator, only the claim.
    b.online(relay.url);
    await b.db.patients.insert({ name: "After", ward: "B", notes: "" }, { space });
    await relayAcknowledged(b.db, space);
    expect(storedCreator(relay, space)).toBe(toHex(a.db.replica.identity!.signingPublic));
    a.online(relay.url);
    await sees(a.db, "After");
    await a.db.patients.insert({ name: "Again", ward: "A", notes: "" }, { space });
    await sees(b.db, "Again");
  });

  it("tells a device without a claim, at a relay that does not know the space, why (AccessDenied 'claim')", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("creator");
    const c = await device("old-link");
    const space = await a.db.createSpace({ name: "Ward" });
    const row = await spaceRow(a.db, space.id);
    // A link as made before claims existed: id, key and name only.
    await c.db.join(formatInviteLink("https://app.example/", { id: row.id, key: row.key, name: row.name }));
    c.online(relay.url);
    const st = await waitFor(
      c.db.status,
      (s) => s.lastError?.code === "AccessDenied" && stateOf(s, space.id) === "refused",
      30_000,
      "AccessDenied for the unclaimed space",
    );
    expect(st.lastError).toMatchObject({ code: "AccessDenied", reason: "claim" });
    expect(st.lastError!.message).toContain("holds no claim by its creator");
    expect(st.transports.find((t) => t.space === space.id)?.detail).toBe(
      "HTTP 403: This space is not registered here and the connection carries no claim by its creator.",
    );
    // Nothing was registered for it; the device's own private space (claimed at creation) was.
    expect(storedCreator(relay, space.id)).toBeUndefined();
    expect(storedCreator(relay, c.db.privateSpace)).toBe(toHex(c.db.replica.identity!.signingPublic));
    // Once the creator has registered it, the old link's device gets in with the token alone.
    a.online(relay.url);
    await a.db.patients.insert({ name: "Registered", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    c.db.reconnect();
    await sees(c.db, "Registered");
  });

  it("a registration of a known space id with another key is refused with its typed error, nothing else affected", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("creator");
    const b = await device("member");
    const space = (await a.db.createSpace({ name: "Clinic" })).id;
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    a.online(relay.url);
    b.online(relay.url);
    await a.db.patients.insert({ name: "First", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space);
    await sees(b.db, "First");

    // A stranger who learned the id: their own key, their own space key (so their own token), and a
    // claim for this id signed with their own identity, stored as a modified client would.
    const stranger = await device("stranger");
    const key = crypto.getRandomValues(new Uint8Array(32));
    const signer = await generateIdentity();
    const token = decodeBase64Url(await deriveRelayToken(key, fromHex(space, 16)));
    const signature = await signBytes(
      signer.signingKey,
      SIGNING_LABELS.relayAuth,
      spaceClaimSigned(fromHex(space, 16), await sha256(token)),
    );
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const claim = encodeSpaceClaim({ creator: signer.signingPublic, salt, signature });
    await stranger.db.replica.dexie.table<SpaceRow>("_spaces").put({
      id: space,
      name: "Clinic",
      key,
      createdAt: Date.now(),
      private: false,
      claim,
    });
    stranger.online(relay.url);
    const st = await waitFor(
      stranger.db.status,
      (s) => s.lastError?.code === "AccessDenied" && stateOf(s, space) === "refused",
      30_000,
      "the stranger's AccessDenied",
    );
    expect(st.lastError).toMatchObject({ code: "AccessDenied", reason: "token" });
    expect(st.transports.find((t) => t.space === space)?.detail).toBe(
      "HTTP 403: Wrong access token for this space.",
    );
    // Nothing else affected: same creator on record, the members keep syncing both ways.
    expect(storedCreator(relay, space)).toBe(toHex(a.db.replica.identity!.signingPublic));
    await b.db.patients.insert({ name: "Second", ward: "B", notes: "" }, { space });
    await sees(a.db, "Second");
    await a.db.patients.insert({ name: "Third", ward: "A", notes: "" }, { space });
    await sees(b.db, "Third");
    expect(await stranger.db.patients.where("name").equals("Third").count()).toBe(0);
    expect(stateOf(a.db.status.get(), space)).toBe("connected");
  });
});
