import { loadavg } from "node:os";
import { claimedSpace } from "../../sync-server/src/testing/claimed-space.ts";
import type { RelayProcess } from "../../sync-server/test/relay-process.ts";
import { DeviceFleet } from "./device-fleet.ts";
import type { FleetPlan } from "./fleet-messages.ts";
import { sampleProcess } from "./process-usage.ts";

/** What the idle scenario measured. */
export interface IdleResult {
  sockets: number;
  spaces: number;
  connectSeconds: number;
  /** The relay's RSS before the first connection, with all of them open, and its peak. */
  relayRssBeforeMiB: number;
  relayRssMiB: number;
  relayPeakRssMiB: number;
  /** (RSS with the sockets - RSS before) / sockets. */
  kibPerSocket: number;
  /** The relay's own count of open sync connections (`shoal_connections_open`) with all of them open. */
  connectionsOpen: number;
  /** The 1-minute load average when the sockets were all open. */
  loadAverage: number;
}

// Devices per space: well under the relay's per-space connection limit (256), like real spaces.
const DEVICES_PER_SPACE = 20;
// How long the sockets stay open and idle before the RSS is read: long enough for the connect
// burst's garbage to be collected, far shorter than the relay's 20 s ping.
const IDLE_MS = 5000;

/**
 * Opens `sockets` authenticated WebSockets (token and space claim at the upgrade, hello, welcome and a
 * first pull each) to one relay, spread over spaces of 20 devices, from `processes` fleet processes;
 * holds them idle for a few seconds, reads the relay's RSS, then closes them all.
 *
 * @example
 * const result = await runIdleSockets(relay, 10_000, 2); // result.relayRssMiB
 */
export async function runIdleSockets(
  relay: RelayProcess,
  sockets: number,
  processes: number,
): Promise<IdleResult> {
  const spaceCount = Math.ceil(sockets / DEVICES_PER_SPACE);
  process.stdout.write(`\n== idle: ${sockets} sockets, ${spaceCount} spaces, one relay ==\n`);
  const pid = relay.child.pid!;
  const before = sampleProcess(pid);
  const spaces = Array.from({ length: spaceCount }, () => claimedSpace());
  const plans: FleetPlan[] = Array.from({ length: sockets }, (_, i) => {
    const space = spaces[i % spaceCount]!;
    return {
      wsUrl: relay.wsUrl,
      instance: 0,
      space: space.space,
      token: space.token,
      claim: space.claim,
      writer: false,
    };
  });
  const fleet = await DeviceFleet.start(processes);
  try {
    const started = performance.now();
    const opened = await fleet.connect(plans);
    const connectSeconds = (performance.now() - started) / 1000;
    process.stdout.write(`opened ${opened} sockets in ${connectSeconds.toFixed(1)} s; idling...\n`);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const during = sampleProcess(pid);
    const page = await (await fetch(`${relay.url}/metrics`)).text();
    const open = Number(
      page
        .split("\n")
        .find((l) => l.startsWith("shoal_connections_open "))
        ?.split(" ")[1] ?? 0,
    );
    const r = (n: number) => Math.round(n * 10) / 10;
    return {
      sockets: opened,
      spaces: spaceCount,
      connectSeconds: r(connectSeconds),
      relayRssBeforeMiB: r(before?.rssMiB ?? 0),
      relayRssMiB: r(during?.rssMiB ?? 0),
      relayPeakRssMiB: r(during?.peakRssMiB ?? 0),
      kibPerSocket: r((((during?.rssMiB ?? 0) - (before?.rssMiB ?? 0)) * 1024) / Math.max(1, opened)),
      connectionsOpen: open,
      loadAverage: r(loadavg()[0]!),
    };
  } finally {
    await fleet.close();
  }
}
