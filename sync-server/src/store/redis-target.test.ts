import { describe, expect, it } from "vitest";
import { isRedisStoreUrl, parseRedisTarget } from "./redis-target.ts";

describe("parseRedisTarget", () => {
  it("passes a single-server URL through unchanged", () => {
    expect(parseRedisTarget("redis://:pw@127.0.0.1:6379/2")).toEqual({
      kind: "single",
      url: "redis://:pw@127.0.0.1:6379/2",
    });
  });

  it("reads the seed nodes, credentials and TLS of a cluster URL", () => {
    expect(parseRedisTarget("redis+cluster://10.0.0.1:7000,10.0.0.2:7001/")).toEqual({
      kind: "cluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
      ],
      tls: false,
    });
    expect(parseRedisTarget("rediss+cluster://relay:s%40cret@[::1]:7000")).toEqual({
      kind: "cluster",
      nodes: [{ host: "::1", port: 7000 }],
      username: "relay",
      password: "s@cret",
      tls: true,
    });
    expect(parseRedisTarget("redis+cluster://:pw@a:1")).toMatchObject({ password: "pw" });
  });

  it("refuses a cluster URL with a database, no nodes or a bad port, without echoing its password", () => {
    for (const url of [
      "redis+cluster://:pw@10.0.0.1:7000/1",
      "redis+cluster://",
      "redis+cluster://:pw@10.0.0.1",
    ]) {
      let message = "";
      try {
        parseRedisTarget(url);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, url).not.toBe("");
      expect(message).not.toContain("pw");
    }
  });

  it("recognises every Redis scheme and nothing else", () => {
    for (const url of ["redis://a:1", "rediss://a:1", "redis+cluster://a:1", "rediss+cluster://a:1"])
      expect(isRedisStoreUrl(url), url).toBe(true);
    for (const url of ["sqlite", "memory", "postgres://a:1", "redis:a"])
      expect(isRedisStoreUrl(url), url).toBe(false);
  });
});
