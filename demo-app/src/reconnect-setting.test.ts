import { afterEach, describe, expect, it, vi } from "vitest";
import { reconnectBackoff } from "./reconnect-setting.ts";

/** A page at `search` with this browser's localStorage (a Map standing in for it). */
function page(search: string, storage: Map<string, string>): void {
  vi.stubGlobal("location", { search });
  vi.stubGlobal("localStorage", {
    getItem: (k: string) => storage.get(k) ?? null,
    setItem: (k: string, v: string) => void storage.set(k, v),
    removeItem: (k: string) => void storage.delete(k),
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the demo's ?retry= reconnect setting", () => {
  it("is the client's default (undefined) when never asked for", () => {
    page("", new Map());
    expect(reconnectBackoff()).toBeUndefined();
  });

  it("caps the backoff at that many seconds and is remembered until ?retry=off", () => {
    const storage = new Map<string, string>();
    page("?retry=2", storage);
    expect(reconnectBackoff()).toEqual({ baseMs: 250, maxMs: 2_000 });
    page("", storage);
    expect(reconnectBackoff()).toEqual({ baseMs: 250, maxMs: 2_000 });
    page("?retry=off", storage);
    expect(reconnectBackoff()).toBeUndefined();
    page("", storage);
    expect(reconnectBackoff()).toBeUndefined();
  });

  it("ignores what is not a whole number of seconds from 1 to 30, keeping what was set before", () => {
    const storage = new Map<string, string>();
    page("?retry=5", storage);
    reconnectBackoff();
    for (const bad of ["0", "31", "1.5", "-3", "soon", "", "1e1"]) {
      page(`?retry=${bad}`, storage);
      expect(reconnectBackoff(), bad).toEqual({ baseMs: 250, maxMs: 5_000 });
    }
    page("?retry=30", storage);
    expect(reconnectBackoff()).toEqual({ baseMs: 250, maxMs: 30_000 });
  });

  it("still works from the address alone when storage is disabled", () => {
    vi.stubGlobal("location", { search: "?retry=1" });
    vi.stubGlobal("localStorage", {
      getItem: () => {
        throw new Error("SecurityError");
      },
      setItem: () => {
        throw new Error("SecurityError");
      },
      removeItem: () => {
        throw new Error("SecurityError");
      },
    });
    expect(reconnectBackoff()).toEqual({ baseMs: 250, maxMs: 1_000 });
  });
});
