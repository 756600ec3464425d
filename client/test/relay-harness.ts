import Sqlite from "better-sqlite3";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { startRelayProcess, type RelayProcess } from "../../sync-server/test/relay-process.ts";
import {
  openDatabase,
  type CollectionDeclaration,
  type CommitId,
  type Database,
  type DatabaseCore,
} from "../src/index.ts";
import { waitFor } from "./wait-for.ts";
import type { Transport, TransportConnection, TransportHandlers } from "../src/transports/transport.ts";
import { webSocketTransport } from "../src/transports/websocket-transport.ts";
import type { SpaceId } from "../src/types.ts";
import { ValueStore } from "../src/live/value-store.ts";
import { decodeMessage, MESSAGE_TYPE_BYTES, toHex } from "../src/protocol/index.ts";

/** A free loopback port: bound once by the OS, then released for the relay to take. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

/**
 * The real relay CLI (`sync-server/src/cli.ts`, sqlite store) as a child process with a fixed port and
 * data directory, so it can be killed and started again at the same address, as the clients know it.
 */
export class RelayHarness {
  readonly port: number;
  readonly dataDir: string;
  readonly #extraArgs: string[];
  #process: RelayProcess | null = null;
  #log = "";

  private constructor(port: number, dataDir: string, extraArgs: string[]) {
    this.port = port;
    this.dataDir = dataDir;
    this.#extraArgs = extraArgs;
  }

  /**
   * Starts a relay on a free port with a new temp data directory.
   *
   * @example
   * const relay = await RelayHarness.start();
   * db.sync({ transports: [relayTransport(relay.url)] });
   */
  static async start(extraArgs: string[] = []): Promise<RelayHarness> {
    const dir = mkdtempSync(join(tmpdir(), "shoal-relay-it-"));
    const relay = new RelayHarness(await freePort(), dir, extraArgs);
    live.add(relay);
    await relay.restart();
    return relay;
  }

  /** `http://127.0.0.1:<port>` (the same across restarts). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#process !== null;
  }

  /** Everything every run of the relay wrote to stderr (its JSON log lines). */
  get log(): string {
    return this.#log + (this.#process?.stderr() ?? "");
  }

  /** Starts the relay process (again) on the same port and data directory; resolves once it listens. */
  async restart(): Promise<void> {
    if (this.#process) throw new Error("the relay is already running");
    // startRelayProcess passes `--port 0` first; a later `--port` wins (node:util parseArgs).
    const p = await startRelayProcess([
      "--port",
      String(this.port),
      "--data",
      this.dataDir,
      ...this.#extraArgs,
    ]);
    this.#process = p;
    void p.child.once("exit", () => {
      if (this.#process === p) {
        this.#log += p.stderr();
        this.#process = null;
      }
    });
  }

  /** Sends `signal` (SIGTERM: graceful, SIGKILL: crash) and resolves once the process has exited. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | string> {
    const p = this.#process;
    if (!p) return "not running";
    const result = await p.stop(signal);
    if (this.#process === p) {
      this.#log += p.stderr();
      this.#process = null;
    }
    return result;
  }

  /**
   * Sends SIGKILL synchronously (for use inside an event handler, so no more frames are processed) and
   * resolves once the process has exited.
   */
  killNow(): Promise<number | string> {
    return this.stop("SIGKILL");
  }

  /** Deletes the data directory (the relay must be stopped). */
  wipe(): void {
    if (this.#process) throw new Error("stop the relay before wiping its data");
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Every file of the data directory, as bytes (sqlite db, -wal, -shm). */
  dataFiles(): { name: string; bytes: Buffer }[] {
    return readdirSync(this.dataDir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => {
        const path = join(e.parentPath, e.name);
        return { name: path, bytes: readFileSync(path) };
      });
  }

  /**
   * Damages commit `seq` of `device` in the stopped relay's store, as bit rot or a storage bug would:
   * one bit of its signature flipped, with the stored hash (and the head's, if it is the head) made to
   * match the damaged bytes, as for a copy that was damaged before it was stored.
   */
  damageStored(space: string, device: string, seq: number): void {
    if (this.#process) throw new Error("stop the relay before damaging its store");
    const db = new Sqlite(this.sqliteFile, { fileMustExist: true });
    try {
      const row = db
        .prepare("SELECT bytes FROM commits WHERE space = ? AND device = ? AND seq = ?")
        .get(space, device, seq) as { bytes: Buffer } | undefined;
      if (!row) throw new Error(`the relay holds no commit ${seq} of ${device}`);
      const bad = Buffer.from(row.bytes);
      bad[bad.length - 1]! ^= 0x01;
      const hash = createHash("sha256").update(bad).digest();
      db.prepare("UPDATE commits SET bytes = ?, hash = ? WHERE space = ? AND device = ? AND seq = ?").run(
        bad,
        hash,
        space,
        device,
        seq,
      );
      db.prepare("UPDATE heads SET hash = ? WHERE space = ? AND device = ? AND seq = ?").run(
        hash,
        space,
        device,
        seq,
      );
    } finally {
      db.close();
    }
  }

  /** The sqlite file the CLI uses under `--data`. */
  get sqliteFile(): string {
    return join(this.dataDir, "relay.sqlite");
  }

  /** `GET /metrics` as text. */
  async metrics(): Promise<string> {
    const res = await fetch(`${this.url}/metrics`);
    if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
    return res.text();
  }

  /** Kills the process if running and deletes the data directory. */
  async dispose(): Promise<void> {
    live.delete(this);
    await this.stop("SIGKILL");
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const live = new Set<RelayHarness>();

/** Kills every relay started by `RelayHarness.start` and not yet disposed (for afterEach/afterAll). */
export async function disposeAllRelays(): Promise<void> {
  await Promise.all([...live].map((r) => r.dispose()));
}

/** The WebSocket transport to the relay, with the `ws` package's WebSocket (Node 20 has no global one). */
export function relayTransport(url: string): Transport {
  return webSocketTransport({ url, WebSocket });
}

/** Bytes and frames that went through one connection of a counting transport. */
export interface ConnectionCount {
  /** Position of the connection in `connections` (0 for the first `connect`). */
  readonly index: number;
  readonly space: SpaceId;
  receivedBytes: number;
  receivedFrames: number;
  sentBytes: number;
  sentFrames: number;
}

/** A transport that counts what passes through each of its connections. */
export interface CountingTransport extends Transport {
  /** One entry per `connect`, in order. */
  readonly connections: readonly ConnectionCount[];
  /** Bytes received over every connection so far. */
  receivedBytes(): number;
  /** Bytes sent over every connection so far. */
  sentBytes(): number;
  /** Every entry of every `ack` frame received, in arrival order, tagged with its connection. */
  readonly acks: ValueStore<readonly SeenAck[]>;
}

/** One entry of a received `ack` frame: the relay holds `device`'s commits of `space` up to `seq`. */
export interface SeenAck {
  readonly connection: number;
  readonly space: SpaceId;
  readonly device: string;
  readonly seq: number;
}

/**
 * Wraps a transport and counts the bytes and frames each connection receives and sends (whole frames
 * as the engine sees them: WebSocket framing is not counted), and records the entries of `ack` frames.
 * `onReceive` sees every received frame before the engine does.
 *
 * @example
 * const t = countingTransport(relayTransport(relay.url));
 * db.sync({ transports: [t] });
 * // later: t.receivedBytes()
 */
export function countingTransport(
  inner: Transport,
  hooks: { onReceive?(frame: Uint8Array, connection: ConnectionCount): void } = {},
): CountingTransport {
  const connections: ConnectionCount[] = [];
  const acks = new ValueStore<readonly SeenAck[]>([]);
  return {
    acks,
    kind: inner.kind,
    label: inner.label,
    connections,
    receivedBytes: () => connections.reduce((s, c) => s + c.receivedBytes, 0),
    sentBytes: () => connections.reduce((s, c) => s + c.sentBytes, 0),
    connect(
      space: SpaceId,
      token: Uint8Array,
      handlers: TransportHandlers,
      claim?: Uint8Array,
    ): TransportConnection {
      const count: ConnectionCount = {
        index: connections.length,
        space,
        receivedBytes: 0,
        receivedFrames: 0,
        sentBytes: 0,
        sentFrames: 0,
      };
      connections.push(count);
      const counted: TransportHandlers = {
        onOpen: () => handlers.onOpen(),
        onMessage: (frame) => {
          count.receivedBytes += frame.byteLength;
          count.receivedFrames++;
          if (frame[1] === MESSAGE_TYPE_BYTES.ack) {
            const m = decodeMessage(frame);
            if (m.type === "ack") {
              const seen = m.entries.map((e) => ({
                connection: count.index,
                space,
                device: toHex(e.device),
                seq: e.seq,
              }));
              acks.set([...acks.get(), ...seen]);
            }
          }
          hooks.onReceive?.(frame, count);
          handlers.onMessage(frame);
        },
        onClose: (reason, code) => handlers.onClose(reason, code),
      };
      const conn = inner.connect(space, token, counted, claim);
      return {
        send(frame: Uint8Array): void {
          count.sentBytes += frame.byteLength;
          count.sentFrames++;
          conn.send(frame);
        },
        get bufferedAmount(): number {
          return conn.bufferedAmount;
        },
        close: (reason?: string) => conn.close(reason),
      };
    },
  };
}

/** The patients collection used by the relay integration tests. */
export type Patient = { name: string; ward: string; notes: string };
export const patientCollections = { patients: { indexes: "id, name, ward", text: ["notes"] } };

/** A client database with its sync switch. */
export interface Device<M extends Record<string, unknown>> {
  readonly db: Database<M>;
  /**
   * Starts syncing through `transport` (default: the WebSocket transport to `url`), reconnecting with
   * `backoff` (default: the engine's).
   */
  online(url: string, transport?: Transport, backoff?: { baseMs: number; maxMs: number }): void;
  /** Stops syncing (the connections close). */
  offline(): void;
  readonly isOnline: boolean;
}

let devices = 0;
const openDevices = new Set<Device<Record<string, unknown>>>();

/**
 * Opens a client database (fake-indexeddb, a unique name) that is closed by `closeAllDevices`.
 *
 * @example
 * const a = await openDevice("a", patientCollections);
 * a.online(relay.url);
 */
export async function openDevice<M extends Record<string, unknown>>(
  label: string,
  collections: { [K in keyof M]: CollectionDeclaration },
): Promise<Device<M>> {
  const db = await openDatabase<M>({ name: `relay-it-${label}-${process.pid}-${devices++}`, collections });
  let stop: (() => void) | null = null;
  const device: Device<M> = {
    db,
    online(url, transport, backoff) {
      stop?.();
      stop = db.sync({ transports: [transport ?? relayTransport(url)], ...(backoff ? { backoff } : {}) });
    },
    offline() {
      stop?.();
      stop = null;
    },
    get isOnline() {
      return stop !== null;
    },
  };
  openDevices.add(device as unknown as Device<Record<string, unknown>>);
  return device;
}

/** Stops syncing and closes every device opened by `openDevice`. */
export async function closeAllDevices(): Promise<void> {
  const all = [...openDevices];
  openDevices.clear();
  for (const d of all) d.offline();
  await Promise.all(all.map((d) => d.db.close()));
}

/**
 * Resolves once the relay has acknowledged every commit this device has made in `space` so far (a live
 * query over the commit log and the acks: an event, not a poll). Unlike `status.pendingCommits === 0`,
 * it cannot be satisfied by a status published before the last commit was counted.
 *
 * @example
 * await a.db.patients.insert(row, { space });
 * await relayAcknowledged(a.db, space.id);
 */
export async function relayAcknowledged(
  db: Pick<DatabaseCore, "vector" | "deviceId" | "live" | "durability">,
  space: SpaceId,
  timeoutMs = 30_000,
): Promise<void> {
  const seq = (await db.vector([space]))[space]?.[db.deviceId] ?? 0;
  if (seq === 0) return;
  const id = `${space}.${db.deviceId}.${seq}` as CommitId;
  await waitFor(
    db.live(() => db.durability(id)),
    (d) => d.relay,
    timeoutMs,
    `the relay to acknowledge ${id}`,
  );
}

/** The sequence numbers the relay's sqlite file holds for one device of one space (opened read-only). */
export function storedSeqs(file: string, space: SpaceId, device: string): number[] {
  const db = new Sqlite(file, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare("SELECT seq FROM commits WHERE space = ? AND device = ? ORDER BY seq")
      .pluck()
      .all(space, device) as number[];
  } finally {
    db.close();
  }
}
