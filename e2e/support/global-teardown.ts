import { rmSync } from "node:fs";

/** Removes the relay's temporary data directory made by playwright.config.ts. */
export default function globalTeardown(): void {
  const dataDir = process.env.SHOAL_E2E_DATA;
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
