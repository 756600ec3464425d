import type { OpenedCommit } from "../sealing/sealer.ts";
import type { DeviceId } from "../types.ts";

/** What a responder needs of the space's sealer (`SpaceSealer` fits). */
export interface PeerSealer {
  sealedRange(device: DeviceId, from: number, to: number): Promise<Uint8Array[]>;
  open(
    bytes: Uint8Array,
    earlier?: (device: DeviceId, seq: number) => Uint8Array | undefined,
  ): Promise<OpenedCommit>;
  screen(opened: readonly OpenedCommit[], source: "peer"): Promise<OpenedCommit[]>;
  keep(opened: readonly OpenedCommit[], source: "peer"): Promise<void>;
}
