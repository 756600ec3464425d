import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["client/src/**/*.test.ts", "sync-server/src/**/*.test.ts"],
          environment: "node",
          setupFiles: ["client/test/setup-fake-indexeddb.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["client/test/integration/**/*.test.ts", "sync-server/test/**/*.test.ts"],
          environment: "node",
          setupFiles: ["client/test/setup-fake-indexeddb.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
