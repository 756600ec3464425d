import { describe, expect, it } from "vitest";
import { encodeBase64Url, offeredSubprotocols } from "@shoal/client/protocol";
import { createApp } from "./app.ts";
import { RelayMetrics } from "./metrics.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { randomId } from "./store/commit-fixtures.ts";
import { claimedSpace, claimOf } from "./testing/claimed-space.ts";

const token = new Uint8Array(32).fill(1);
const otherToken = new Uint8Array(32).fill(2);

/** What a client offers for `space`: the token, and the claim `claimedSpace` made for it if any. */
const offer = (t: Uint8Array, space: string) => offeredSubprotocols(t, claimOf(space));

function upgradeHeaders(protocols?: string[], extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { Upgrade: "websocket", Connection: "Upgrade", ...extra };
  if (protocols) h["Sec-WebSocket-Protocol"] = protocols.join(", ");
  return h;
}

function setup(options: { allowedOrigins?: string[] } = {}) {
  const metrics = new RelayMetrics();
  const store = new MemoryStore();
  // Stands in for the runtime helper: reaching it means every pre-upgrade check passed.
  const upgradeWebSocket = (async (c: { text: (t: string, s: number) => Response }) =>
    c.text("upgraded", 200)) as never;
  const app = createApp({ store, metrics, upgradeWebSocket, ...options });
  return { app, metrics, store };
}

describe("createApp HTTP routes", () => {
  it("answers /healthz with JSON", async () => {
    const res = await setup().app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", connections: 0 });
  });

  it("answers /metrics in Prometheus text with HELP and TYPE lines", async () => {
    const { app, metrics } = setup();
    metrics.frameRejected("truncated");
    const res = await app.request("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain("# HELP shoal_connections_open Open sync connections.");
    expect(text).toContain("# TYPE shoal_frames_rejected_total counter");
    expect(text).toContain('shoal_frames_rejected_total{reason="truncated"} 1');
    expect(text).toContain("shoal_spaces_stored 0");
  });
});

describe("createApp upgrade refusals (before any WebSocket exists)", () => {
  it("refuses a malformed space id with 400", async () => {
    const res = await setup().app.request("/sync/NOT-HEX", {
      headers: upgradeHeaders(offeredSubprotocols(token)),
    });
    expect(res.status).toBe(400);
  });

  it("refuses a plain GET with 426", async () => {
    const res = await setup().app.request(`/sync/${randomId()}`);
    expect(res.status).toBe(426);
  });

  it("refuses a missing or malformed token with 401 and a missing shoal.1 with 400", async () => {
    const { app } = setup();
    expect((await app.request(`/sync/${randomId()}`, { headers: upgradeHeaders(["shoal.1"]) })).status).toBe(
      401,
    );
    expect(
      (await app.request(`/sync/${randomId()}`, { headers: upgradeHeaders(["shoal.1", "shoal-token.%%"]) }))
        .status,
    ).toBe(401);
    const short = ["shoal.1", "shoal-token." + encodeBase64Url(new Uint8Array(4))];
    expect((await app.request(`/sync/${randomId()}`, { headers: upgradeHeaders(short) })).status).toBe(401);
    const noShoal = [offeredSubprotocols(token)[1]!];
    expect((await app.request(`/sync/${randomId()}`, { headers: upgradeHeaders(noShoal) })).status).toBe(400);
  });

  it("registers a space on first use, then accepts its token and refuses others with 403", async () => {
    const { app, store, metrics } = setup();
    const { space } = claimedSpace(token);
    const first = await app.request(`/sync/${space}`, {
      headers: upgradeHeaders(offer(token, space)),
    });
    expect(await first.text()).toBe("upgraded");
    expect(await store.tokenHash(space)).toBeDefined();
    // Once registered, the token alone is enough: members without the claim connect as before.
    const again = await app.request(`/sync/${space}`, {
      headers: upgradeHeaders(offeredSubprotocols(token)),
    });
    expect(again.status).toBe(200);
    const wrong = await app.request(`/sync/${space}`, {
      headers: upgradeHeaders(offeredSubprotocols(otherToken)),
    });
    expect(wrong.status).toBe(403);
    expect(await (await app.request("/metrics")).text()).toContain(
      'shoal_upgrades_refused_total{status="403"} 1',
    );
    expect(metrics.connectionsOpen).toBe(0);
  });

  it("applies the Origin allow-list", async () => {
    const { app } = setup({ allowedOrigins: ["https://clinic.example"] });
    const { space, claim } = claimedSpace(token);
    const ok = upgradeHeaders(offeredSubprotocols(token, claim), { Origin: "https://clinic.example" });
    const bad = upgradeHeaders(offeredSubprotocols(token, claim), { Origin: "https://evil.example" });
    expect((await app.request(`/sync/${space}`, { headers: bad })).status).toBe(403);
    expect((await app.request(`/sync/${space}`, { headers: ok })).status).toBe(200);
  });

  it("never echoes the token in a refusal", async () => {
    const { app } = setup();
    const { space } = claimedSpace(token);
    await app.request(`/sync/${space}`, { headers: upgradeHeaders(offer(token, space)) });
    const res = await app.request(`/sync/${space}`, {
      headers: upgradeHeaders(offeredSubprotocols(otherToken)),
    });
    const text = (await res.text()) + (await (await app.request("/metrics")).text());
    expect(text).not.toContain(encodeBase64Url(otherToken));
    expect(text).not.toContain(space);
  });
});

describe("createApp access probe (POST /sync/<space>/access)", () => {
  const probe = (app: ReturnType<typeof setup>["app"], space: string, body: string, origin?: string) =>
    app.request(`/sync/${space}/access`, {
      method: "POST",
      body,
      headers: { "Content-Type": "text/plain", ...(origin ? { Origin: origin } : {}) },
    });
  const upgrade = (app: ReturnType<typeof setup>["app"], space: string, t: Uint8Array) =>
    app.request(`/sync/${space}`, { headers: upgradeHeaders(offer(t, space)) });
  const withClaim = (t: Uint8Array, claim: Uint8Array) => `${encodeBase64Url(t)}.${encodeBase64Url(claim)}`;

  it("answers 204 for the registered token, 403 for another, 401 for none or a malformed one, 400 for a bad space", async () => {
    const { app } = setup();
    const { space } = claimedSpace(token);
    expect((await upgrade(app, space, token)).status).toBe(200);
    expect((await probe(app, space, encodeBase64Url(token))).status).toBe(204);
    const wrong = await probe(app, space, encodeBase64Url(otherToken));
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toBe("Wrong access token for this space.");
    expect((await probe(app, space, "")).status).toBe(401);
    expect((await probe(app, space, "%%")).status).toBe(401);
    expect((await probe(app, space, encodeBase64Url(new Uint8Array(4)))).status).toBe(401);
    expect((await probe(app, space, "A".repeat(10_000))).status).toBe(413);
    expect((await probe(app, "NOT-HEX", encodeBase64Url(token))).status).toBe(400);
    // The same answer the upgrade gave, for the same token.
    expect((await upgrade(app, space, otherToken)).status).toBe(403);
  });

  it("never registers a space: 204 for an unknown one with its claim, and a later connection still claims it", async () => {
    const { app, store } = setup();
    const { space, claim } = claimedSpace(token);
    expect((await probe(app, space, withClaim(token, claim))).status).toBe(204);
    // The upgrade's claim checks, with the upgrade's texts: none, another space's, another token's.
    const none = await probe(app, space, encodeBase64Url(token));
    expect([none.status, await none.text()]).toEqual([
      403,
      "This space is not registered here and the connection carries no claim by its creator.",
    ]);
    const foreign = await probe(app, space, withClaim(token, claimedSpace(token).claim));
    expect([foreign.status, await foreign.text()]).toEqual([403, "The claim does not match this space id."]);
    const stolen = await probe(app, space, withClaim(otherToken, claim));
    expect([stolen.status, await stolen.text()]).toEqual([403, "The claim's signature does not verify."]);
    expect((await probe(app, space, `${encodeBase64Url(token)}.%%`)).status).toBe(403);
    expect(await store.tokenHash(space)).toBeUndefined();
    expect((await store.stats()).spaces).toBe(0);
    // Had the probe registered otherToken, this upgrade would be refused with 403.
    expect((await upgrade(app, space, token)).status).toBe(200);
    expect((await probe(app, space, encodeBase64Url(otherToken))).status).toBe(403);
    expect((await probe(app, space, encodeBase64Url(token))).status).toBe(204);
  });

  it("applies the upgrade's Origin allow-list and lets allowed pages read the answer (CORS)", async () => {
    const { app } = setup({ allowedOrigins: ["https://clinic.example"] });
    const { space, claim } = claimedSpace(token);
    await upgrade(app, space, token);
    const ok = await probe(app, space, encodeBase64Url(otherToken), "https://clinic.example");
    expect(ok.status).toBe(403);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://clinic.example");
    expect(ok.headers.get("vary")).toContain("Origin");
    const evil = await probe(app, space, encodeBase64Url(token), "https://evil.example");
    expect(evil.status).toBe(403);
    expect(await evil.text()).toBe("Origin not allowed.");
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    // Without an allow-list every page may read its own answer; without Origin there is nothing to allow.
    const open = setup().app;
    const any = await probe(open, space, withClaim(token, claim), "https://anywhere.example");
    expect(any.status).toBe(204);
    expect(any.headers.get("access-control-allow-origin")).toBe("https://anywhere.example");
    expect(
      (await probe(open, space, withClaim(token, claim))).headers.get("access-control-allow-origin"),
    ).toBeNull();
  });

  it("counts probes by status in /metrics and never echoes the token", async () => {
    const logged: string[] = [];
    const store = new MemoryStore();
    const app = createApp({
      store,
      upgradeWebSocket: (async (c: { text: (t: string, s: number) => Response }) =>
        c.text("upgraded", 200)) as never,
      log: (event, fields) => logged.push(JSON.stringify({ event, ...fields })),
    });
    const { space } = claimedSpace(token);
    await upgrade(app, space, token);
    await probe(app, space, encodeBase64Url(token));
    const wrong = await probe(app, space, encodeBase64Url(otherToken));
    await probe(app, space, "");
    const metrics = await (await app.request("/metrics")).text();
    expect(metrics).toContain('shoal_access_probes_total{status="204"} 1');
    expect(metrics).toContain('shoal_access_probes_total{status="401"} 1');
    expect(metrics).toContain('shoal_access_probes_total{status="403"} 1');
    expect(metrics).not.toContain("shoal_upgrades_refused_total{");
    const seen = (await wrong.text()) + metrics + logged.join("\n");
    expect(logged.some((l) => l.includes('"status":403'))).toBe(true);
    for (const t of [token, otherToken]) expect(seen).not.toContain(encodeBase64Url(t));
  });
});

describe("createApp space claims (registering an unknown space)", () => {
  const upgradeWith = (app: ReturnType<typeof setup>["app"], space: string, protocols: string[]) =>
    app.request(`/sync/${space}`, { headers: upgradeHeaders(protocols) });
  const refusalOf = async (res: Response) => [res.status, await res.text()];

  it("refuses an unknown space without a claim, with another space's claim or a bad signature, and registers none", async () => {
    const { app, store, metrics } = setup();
    const { space, claim } = claimedSpace(token);
    expect(await refusalOf(await upgradeWith(app, space, offeredSubprotocols(token)))).toEqual([
      403,
      "This space is not registered here and the connection carries no claim by its creator.",
    ]);
    const other = claimedSpace(token);
    expect(await refusalOf(await upgradeWith(app, space, offeredSubprotocols(token, other.claim)))).toEqual([
      403,
      "The claim does not match this space id.",
    ]);
    const flipped = claim.slice();
    flipped[flipped.length - 1]! ^= 1;
    expect(await refusalOf(await upgradeWith(app, space, offeredSubprotocols(token, flipped)))).toEqual([
      403,
      "The claim's signature does not verify.",
    ]);
    // A true claim offered with another token than the one it was signed for registers nothing.
    expect(await refusalOf(await upgradeWith(app, space, offeredSubprotocols(otherToken, claim)))).toEqual([
      403,
      "The claim's signature does not verify.",
    ]);
    const short = [...offeredSubprotocols(token), "shoal-claim." + encodeBase64Url(claim.subarray(0, 80))];
    expect((await upgradeWith(app, space, short)).status).toBe(403);
    expect(await store.tokenHash(space)).toBeUndefined();
    expect((await store.stats()).spaces).toBe(0);
    expect(metrics.refusals("claim-missing")).toBe(1);
    expect(metrics.refusals("claim-wrong-space")).toBe(2);
    expect(metrics.refusals("claim-bad-signature")).toBe(2);
    expect(await (await app.request("/metrics")).text()).toContain(
      'shoal_upgrades_refused_total{status="403"} 5',
    );
  });

  it("registers a space with a valid claim and keeps its creator key", async () => {
    const { app, store } = setup();
    const { space, claim, creator } = claimedSpace(token);
    expect(await (await upgradeWith(app, space, offeredSubprotocols(token, claim))).text()).toBe("upgraded");
    expect(await store.tokenHash(space)).toBeDefined();
    expect(Buffer.from((await store.creator(space))!).equals(Buffer.from(creator))).toBe(true);
  });

  it("refuses a registration of a known space id with another key and token (403), nothing else affected", async () => {
    const { app, store } = setup();
    const { space, claim } = claimedSpace(token);
    expect((await upgradeWith(app, space, offeredSubprotocols(token, claim))).status).toBe(200);
    const hash = await store.tokenHash(space);
    // A stranger with their own key: a claim for this id under their key cannot derive it, and their
    // own valid claim is for another id. Either way the known space's token decides: 403.
    const stranger = claimedSpace(otherToken);
    for (const strangerClaim of [stranger.claim, claim]) {
      expect(
        await refusalOf(await upgradeWith(app, space, offeredSubprotocols(otherToken, strangerClaim))),
      ).toEqual([403, "Wrong access token for this space."]);
    }
    expect(await store.tokenHash(space)).toEqual(hash);
    expect((await upgradeWith(app, space, offeredSubprotocols(token))).status).toBe(200);
    expect((await store.stats()).spaces).toBe(1);
  });

  it("checks the new-spaces limits before the claim, so made-up claims cost a stranger the same", async () => {
    const metrics = new RelayMetrics();
    const app = createApp({
      store: new MemoryStore(),
      metrics,
      limits: { newSpacesPerHourPerAddress: 1 },
      upgradeWebSocket: (async (c: { text: (t: string, s: number) => Response }) =>
        c.text("upgraded", 200)) as never,
    });
    expect((await upgradeWith(app, randomId(), offeredSubprotocols(token))).status).toBe(403);
    expect((await upgradeWith(app, randomId(), offeredSubprotocols(token))).status).toBe(429);
    expect(metrics.refusals("claim-missing")).toBe(1);
    expect(metrics.refusals("new-spaces-rate")).toBe(1);
  });
});
