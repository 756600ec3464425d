import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { FleetPlan, FleetRecord, FleetReply, FleetRequest } from "./fleet-messages.ts";
import type { WriteMode } from "./simulated-device.ts";

const ENTRY = fileURLToPath(new URL("./fleet-process.ts", import.meta.url));
// Devices opened at once per process: enough to be quick, few enough not to trip a SYN backlog.
const CONNECT_WAVE = 200;

// A request without its id (distributed over the union, so each kind keeps its own fields).
type Body = FleetRequest extends infer R ? (R extends FleetRequest ? Omit<R, "id"> : never) : never;
type Answer<T extends FleetReply["type"]> = Extract<FleetReply, { type: T }>;

/**
 * Simulated devices spread over `processes` child processes (fleet-process.ts), so that the relay
 * under test does not share its process, or its event loop, with the load it is measured under. Each
 * method acts on every process and resolves when all have answered.
 *
 * @example
 * const fleet = await DeviceFleet.start(2);
 * await fleet.connect(plans);
 * await fleet.write(10, "one"); ... const acked = await fleet.stop();
 * const record = await fleet.report(); await fleet.close();
 */
export class DeviceFleet {
  readonly #children: ChildProcess[];
  readonly #waiting = new Map<number, (reply: FleetReply) => void>();
  #nextId = 1;

  private constructor(children: ChildProcess[]) {
    this.#children = children;
    for (const child of children) {
      child.on("message", (reply: FleetReply) => {
        this.#waiting.get(reply.id)?.(reply);
        this.#waiting.delete(reply.id);
      });
    }
  }

  /** Forks `processes` fleet processes (Node with tsx, like the relay). */
  static async start(processes: number): Promise<DeviceFleet> {
    const children = Array.from({ length: processes }, () =>
      fork(ENTRY, [], {
        execArgv: ["--conditions=shoal-source", "--import", "tsx"],
        serialization: "advanced",
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      }),
    );
    await Promise.all(children.map((c) => once(c, "spawn")));
    return new DeviceFleet(children);
  }

  /** Process ids, for CPU and memory samples. */
  get pids(): number[] {
    return this.#children.map((c) => c.pid!);
  }

  /**
   * Opens the planned devices, dealt round-robin over the processes; resolves with how many opened.
   * Throws (with the first failure) if any could not connect.
   */
  async connect(plans: FleetPlan[]): Promise<number> {
    const shares = this.#children.map((_, i) => plans.filter((_, j) => j % this.#children.length === i));
    const replies = await Promise.all(
      this.#children.map((c, i) =>
        this.#ask<"connected">(c, { type: "connect", plans: shares[i]!, wave: CONNECT_WAVE }),
      ),
    );
    const failed = replies.reduce((n, r) => n + r.failed, 0);
    if (failed > 0) {
      const first = replies.find((r) => r.firstError)?.firstError;
      throw new Error(`${failed} of ${plans.length} devices could not connect; first: ${first}`);
    }
    return replies.reduce((n, r) => n + r.opened, 0);
  }

  /** Starts every writer. */
  async write(rate: number, mode: WriteMode): Promise<void> {
    await this.#all<"written">({ type: "write", rate, mode });
  }

  /** Stops every writer after its frame in flight; resolves with the commits acknowledged so far. */
  async stop(): Promise<number> {
    return (await this.#all<"stopped">({ type: "stop" })).reduce((n, r) => n + r.acked, 0);
  }

  /** Live pushes received so far by all devices. */
  async deliveries(): Promise<number> {
    return (await this.#all<"count">({ type: "count" })).reduce((n, r) => n + r.deliveries, 0);
  }

  /** Every process's record, merged. */
  async report(): Promise<FleetRecord> {
    const records = (await this.#all<"report">({ type: "report" })).map((r) => r.record);
    const join = (pick: (r: FleetRecord) => Float64Array) => {
      const out = new Float64Array(records.reduce((n, r) => n + pick(r).length, 0));
      let at = 0;
      for (const r of records) {
        out.set(pick(r), at);
        at += pick(r).length;
      }
      return out;
    };
    return {
      ackMs: join((r) => r.ackMs),
      deliverMs: {
        sameInstance: join((r) => r.deliverMs.sameInstance),
        crossInstance: join((r) => r.deliverMs.crossInstance),
      },
      acked: records.reduce((n, r) => n + r.acked, 0),
      refused: records.reduce((n, r) => n + r.refused, 0),
      closedEarly: records.reduce((n, r) => n + r.closedEarly, 0),
    };
  }

  /** Closes every device, then ends the processes. Safe to call twice. */
  async close(): Promise<void> {
    const live = this.#children.filter((c) => c.connected);
    await Promise.race([
      Promise.all(live.map((c) => this.#ask<"closed">(c, { type: "close" }))),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    await Promise.all(
      this.#children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = once(c, "exit");
        if (c.connected)
          c.disconnect(); // the process exits on disconnect
        else c.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      }),
    );
  }

  #all<T extends FleetReply["type"]>(body: Body): Promise<Answer<T>[]> {
    return Promise.all(this.#children.map((c) => this.#ask<T>(c, body)));
  }

  #ask<T extends FleetReply["type"]>(child: ChildProcess, body: Body): Promise<Answer<T>> {
    const id = this.#nextId++;
    return new Promise<Answer<T>>((resolve, reject) => {
      const onExit = () => reject(new Error(`fleet process ${child.pid} exited during ${body.type}`));
      child.once("exit", onExit);
      this.#waiting.set(id, (reply) => {
        child.off("exit", onExit);
        resolve(reply as Answer<T>);
      });
      child.send({ ...body, id } as FleetRequest);
    });
  }
}
