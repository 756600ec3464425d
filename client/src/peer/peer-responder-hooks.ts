import type { ShoalError } from "../errors.ts";

/** What a responder reports. */
export interface PeerResponderHooks {
  /**
   * `connected` once the peer said hello; `offline` when the link is gone; `refused` when the peer's
   * membership log refused this device (an `AccessDenied` went to `error` first).
   */
  state(state: "connecting" | "connected" | "offline" | "refused", detail?: string): void;
  error(error: ShoalError): void;
  /** Counts, for status and tests: frames in and out, commits sent and applied. */
  traffic?(counts: PeerTraffic): void;
}

/** Running totals of one responder's link. */
export interface PeerTraffic {
  framesIn: number;
  framesOut: number;
  commitsSent: number;
  commitsReceived: number;
}
