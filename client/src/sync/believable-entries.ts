import { ProtocolError } from "../errors.ts";
import { toHex, type VectorEntry } from "../protocol/index.ts";
import type { DeviceId } from "../types.ts";

/**
 * The entries of a relay's vector or ack that can be true. A relay cannot hold commits of THIS device
 * that this device never made: such a claim (a lying or confused relay) is reported and dropped, so it
 * neither becomes a receipt nor stops uploads. Other devices' commits it may well hold beyond ours.
 */
export function believableEntries(
  entries: readonly VectorEntry[],
  mine: Record<string, number>,
  me: DeviceId,
  report: (e: ProtocolError) => void,
): { device: DeviceId; seq: number }[] {
  const out: { device: DeviceId; seq: number }[] = [];
  for (const e of entries) {
    const device = toHex(e.device) as DeviceId;
    if (device === me && e.seq > (mine[me] ?? 0)) {
      report(
        new ProtocolError(
          "bad-field",
          `The relay claims commits of this device it never made (up to ${e.seq}); ignored.`,
        ),
      );
      continue;
    }
    out.push({ device, seq: e.seq });
  }
  return out;
}
