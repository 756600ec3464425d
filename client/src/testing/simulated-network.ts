import { decodeMessage } from "../protocol/index.ts";
import type { Transport, TransportConnection, TransportHandlers } from "../transports/transport.ts";
import { memoryTransport, type MemoryAccept } from "../transports/memory-transport.ts";
import type { SpaceId } from "../types.ts";
import { seededRandom } from "./seeded-random.ts";

/** Fault rates of a simulated network, each a probability per frame. */
export interface NetworkFaults {
  /** A frame lost, and the connection with it (as when a socket breaks mid-batch). */
  drop: number;
  /** A `commits` or `ack` frame delivered twice. */
  duplicate: number;
  /** Largest extra delay of a frame, in ms (order within a connection is kept, as TCP does). */
  maxDelayMs: number;
  /**
   * A frame delivered with one bit flipped, either way (a damaging proxy, a bad NIC): the frame is
   * copied first, so the sender's bytes stay intact. Optional, 0 when absent.
   */
  bitFlip?: number;
}

/** What the network did, for the fuzz report. */
export interface NetworkStats {
  frames: number;
  dropped: number;
  duplicated: number;
  disconnects: number;
  refused: number;
  /** Frames delivered with one bit flipped (to the relay or from it). */
  flipped: number;
}

/**
 * A seeded network between replicas and an in-process relay: delays frames, duplicates commit batches
 * and acks, breaks connections in the middle of batches, flips bits in frames both ways (when
 * `bitFlip` is set), and partitions replicas (their connections
 * drop and new ones are refused until healed). Frames on one connection stay in order, as on a real
 * WebSocket; across connections and replicas anything interleaves. The same seed makes the same
 * decisions for the same sequence of frames.
 *
 * @example
 * const net = new SimulatedNetwork(relay.accept, 42, { drop: 0.02, duplicate: 0.05, maxDelayMs: 3 });
 * db.sync({ transports: [net.transport("a")] });
 * net.partition("a"); ... net.heal("a");
 */
export class SimulatedNetwork {
  readonly stats: NetworkStats = {
    frames: 0,
    dropped: 0,
    duplicated: 0,
    disconnects: 0,
    refused: 0,
    flipped: 0,
  };
  readonly #inner: Transport;
  readonly #rnd: ReturnType<typeof seededRandom>;
  readonly #faults: NetworkFaults;
  readonly #partitioned = new Set<string>();
  readonly #open = new Map<string, Set<TransportConnection>>();
  #enabled = true;

  constructor(accept: MemoryAccept, seed: number, faults: NetworkFaults, appeal?: Transport["appeal"]) {
    this.#inner = memoryTransport(accept, { label: "simulated", ...(appeal && { appeal }) });
    this.#rnd = seededRandom(seed ^ 0x5eed);
    this.#faults = faults;
  }

  /** Stops injecting faults (delays stay): used to heal before the final convergence check. */
  calm(): void {
    this.#enabled = false;
  }

  /** Cuts a replica off: its connections drop, new ones are refused until `heal`. */
  partition(replica: string): void {
    this.#partitioned.add(replica);
    for (const c of this.#open.get(replica) ?? []) c.close("partitioned");
  }

  heal(replica: string): void {
    this.#partitioned.delete(replica);
  }

  isPartitioned(replica: string): boolean {
    return this.#partitioned.has(replica);
  }

  /** The transport one replica uses. */
  transport(replica: string): Transport {
    return {
      kind: "relay",
      label: `simulated:${replica}`,
      connect: (...args: Parameters<Transport["connect"]>) => this.#connect(replica, ...args),
      ...(this.#inner.appeal && {
        // A partitioned replica reaches no relay, by HTTP either.
        appeal: (...args: Parameters<NonNullable<Transport["appeal"]>>) =>
          this.#partitioned.has(replica) ? Promise.resolve(false) : this.#inner.appeal!(...args),
      }),
    };
  }

  #chance(p: number): boolean {
    return this.#enabled && p > 0 && this.#rnd.next() < p;
  }

  /** The frame as sent, or (by the seeded chance) a copy with one bit flipped. */
  #damage(frame: Uint8Array): Uint8Array {
    if (frame.length === 0 || !this.#chance(this.#faults.bitFlip ?? 0)) return frame;
    const copy = frame.slice();
    const bit = this.#rnd.int(copy.length * 8);
    copy[bit >> 3]! ^= 1 << (bit & 7);
    this.stats.flipped++;
    return copy;
  }

  #connect(
    replica: string,
    space: SpaceId,
    token: Uint8Array,
    handlers: TransportHandlers,
    claim: Uint8Array | undefined,
    proofs: readonly string[] | undefined,
  ): TransportConnection {
    if (this.#partitioned.has(replica)) {
      this.stats.refused++;
      let closed = false;
      setTimeout(() => {
        if (!closed) handlers.onClose("partitioned", 1006);
        closed = true;
      }, 1);
      return {
        send() {},
        bufferedAmount: 0,
        close: () => void (closed || ((closed = true), handlers.onClose("closed", 1000))),
      };
    }
    let chain = Promise.resolve();
    let conn!: TransportConnection;
    const later = (fn: () => void) => {
      const delay = this.#faults.maxDelayMs > 0 ? this.#rnd.int(this.#faults.maxDelayMs + 1) : 0;
      chain = chain.then(() => new Promise<void>((r) => setTimeout(() => (fn(), r()), delay)));
    };
    const breakLink = () => {
      this.stats.dropped++;
      this.stats.disconnects++;
      conn.close("simulated drop");
    };
    const open = this.#open.get(replica) ?? new Set();
    this.#open.set(replica, open);
    const relayHandlers: TransportHandlers = {
      onOpen: () => later(() => handlers.onOpen()),
      onMessage: (frame) => {
        this.stats.frames++;
        if (this.#chance(this.#faults.drop)) return breakLink();
        const twice = this.#chance(this.#faults.duplicate) && isBatch(frame);
        const first = this.#damage(frame);
        later(() => handlers.onMessage(first));
        if (twice) {
          this.stats.duplicated++;
          const second = this.#damage(frame);
          later(() => handlers.onMessage(second));
        }
      },
      onClose: (reason, code) => {
        open.delete(conn);
        later(() => handlers.onClose(reason, code));
      },
    };
    const inner = this.#inner.connect(space, token, relayHandlers, claim, proofs);
    conn = {
      send: (frame) => {
        this.stats.frames++;
        if (this.#chance(this.#faults.drop)) return breakLink();
        inner.send(this.#damage(frame));
        if (this.#chance(this.#faults.duplicate) && isBatch(frame)) {
          this.stats.duplicated++;
          inner.send(this.#damage(frame));
        }
      },
      get bufferedAmount() {
        return inner.bufferedAmount;
      },
      close: (reason) => inner.close(reason),
    };
    open.add(conn);
    return conn;
  }
}

function isBatch(frame: Uint8Array): boolean {
  try {
    const t = decodeMessage(frame).type;
    return t === "commits" || t === "ack";
  } catch {
    return false;
  }
}
