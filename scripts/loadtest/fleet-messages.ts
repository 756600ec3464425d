import type { WriteMode } from "./simulated-device.ts";

/** A device to open in a fleet process; its signing key is made there (a KeyObject cannot cross IPC). */
export interface FleetPlan {
  wsUrl: string;
  instance: number;
  space: string;
  token: Uint8Array;
  claim: Uint8Array;
  writer: boolean;
}

/**
 * What a fleet process records: per-commit ack and push latencies (ms, as Float64Arrays so that the
 * structured clone of `serialization: "advanced"` moves them as one block) and counts.
 */
export interface FleetRecord {
  ackMs: Float64Array;
  deliverMs: { sameInstance: Float64Array; crossInstance: Float64Array };
  acked: number;
  refused: number;
  closedEarly: number;
}

/** Requests from the load test to a fleet process; each is answered by one `FleetReply` with its `id`. */
export type FleetRequest = { id: number } & (
  | { type: "connect"; plans: FleetPlan[]; wave: number }
  | { type: "write"; rate: number; mode: WriteMode }
  | { type: "stop" }
  | { type: "count" }
  | { type: "report" }
  | { type: "close" }
);

/** A fleet process's answer to the request with the same `id`. */
export type FleetReply = { id: number } & (
  | { type: "connected"; opened: number; failed: number; firstError?: string }
  | { type: "written" }
  | { type: "stopped"; acked: number }
  | { type: "count"; deliveries: number; acked: number }
  | { type: "report"; record: FleetRecord }
  | { type: "closed" }
);
