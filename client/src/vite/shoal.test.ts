import { resolveConfig } from "vite";
import { describe, expect, it } from "vitest";
import { shoal } from "./shoal.ts";

describe("shoal() Vite plugin", () => {
  it("keeps Automerge out of dependency pre-bundling and keeps the app's own exclusions", async () => {
    const config = await resolveConfig(
      {
        configFile: false,
        logLevel: "silent",
        plugins: [shoal()],
        optimizeDeps: { exclude: ["left-alone"] },
      },
      "serve",
    );
    expect(config.optimizeDeps.exclude).toEqual(
      expect.arrayContaining(["left-alone", "@automerge/automerge"]),
    );
  });

  it("is what excludes Automerge: without it the resolved config does not", async () => {
    const config = await resolveConfig({ configFile: false, logLevel: "silent" }, "serve");
    expect(config.optimizeDeps.exclude ?? []).not.toContain("@automerge/automerge");
  });
});
