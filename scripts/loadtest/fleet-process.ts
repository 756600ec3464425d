// A child process of `npm run loadtest` that runs simulated devices, so that the relay's process spends
// its CPU on the relay alone and the two compete only as the operating system schedules them. Driven
// over IPC by `DeviceFleet` (fleet-messages.ts); exits when the IPC channel closes.
import { newDeviceKey } from "./device-key.ts";
import type { FleetReply, FleetRequest } from "./fleet-messages.ts";
import { SimulatedDevice, type LoadRecorder } from "./simulated-device.ts";

const recorder: LoadRecorder = {
  ackMs: [],
  deliverMs: { sameInstance: [], crossInstance: [] },
  acked: 0,
  refused: 0,
  closedEarly: 0,
};
const devices: SimulatedDevice[] = [];
const writers: SimulatedDevice[] = [];

function reply(message: FleetReply): void {
  process.send?.(message);
}

async function handle(request: FleetRequest): Promise<void> {
  switch (request.type) {
    case "connect": {
      let failed = 0;
      let firstError: string | undefined;
      for (let i = 0; i < request.plans.length; i += request.wave) {
        const wave = request.plans.slice(i, i + request.wave);
        const opened = await Promise.allSettled(
          wave.map((p) => SimulatedDevice.connect({ ...p, key: newDeviceKey() }, recorder)),
        );
        opened.forEach((o, j) => {
          if (o.status === "rejected") {
            failed += 1;
            firstError ??= String(o.reason);
            return;
          }
          devices.push(o.value);
          if (wave[j]!.writer) writers.push(o.value);
        });
      }
      reply({ id: request.id, type: "connected", opened: devices.length, failed, firstError });
      return;
    }
    case "write":
      for (const w of writers) w.startWriting(request.rate, request.mode);
      reply({ id: request.id, type: "written" });
      return;
    case "stop":
      await Promise.all(writers.map((w) => w.stopWriting()));
      reply({ id: request.id, type: "stopped", acked: recorder.acked });
      return;
    case "count": {
      const deliveries = recorder.deliverMs.sameInstance.length + recorder.deliverMs.crossInstance.length;
      reply({ id: request.id, type: "count", deliveries, acked: recorder.acked });
      return;
    }
    case "report":
      reply({
        id: request.id,
        type: "report",
        record: {
          ackMs: Float64Array.from(recorder.ackMs),
          deliverMs: {
            sameInstance: Float64Array.from(recorder.deliverMs.sameInstance),
            crossInstance: Float64Array.from(recorder.deliverMs.crossInstance),
          },
          acked: recorder.acked,
          refused: recorder.refused,
          closedEarly: recorder.closedEarly,
        },
      });
      return;
    case "close":
      for (const d of devices) d.close();
      reply({ id: request.id, type: "closed" });
      return;
  }
}

process.on("message", (request: FleetRequest) => {
  handle(request).catch((e: unknown) => {
    process.stderr.write(`fleet process: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
});
// The load test is gone (finished or killed): nothing here may outlive it.
process.on("disconnect", () => process.exit(0));
