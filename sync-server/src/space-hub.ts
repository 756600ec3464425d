import { CLOSE_CODES } from "@shoal/client/protocol";
import { TurnPushes } from "./turn-pushes.ts";

/** What the hub needs from a connection: where it belongs and how to push commits to it. */
export interface HubMember {
  readonly space: string;
  /** Sends freshly stored commits of the member's space; the member applies its own backpressure rule. */
  push(commits: Uint8Array[]): void;
  /** Closes the connection (shutdown). */
  close(code: number, reason: string): void;
  /**
   * Offers a `signal` frame (already encoded) addressed to `to` (a device id in hex, or null for
   * everyone). Members that do not take signals leave it out.
   */
  signal?(to: string | null, frame: Uint8Array): SignalOutcome;
  /**
   * Whether the connection is `device`'s: the device it proved (spaces with members) or named in its
   * `hello`. Used to close a removed device's connections.
   */
  speaksFor?(device: string): boolean;
}

/** What a member did with an offered signal. */
export type SignalOutcome = "delivered" | "not-addressed" | "slow-reader";

/**
 * Where the hub hands commits to and takes commits from other relay instances (`RedisFanOut`). The
 * hub watches a space while it has members there, so an instance only hears about its own spaces.
 */
export interface HubLink {
  /** Starts hearing other instances' commits of `space`; resolves once nothing published after it can be missed. Idempotent. */
  watch(space: string): Promise<void>;
  /** Stops hearing about `space`. */
  unwatch(space: string): void;
  /** Sends commits this instance just stored (durably) to every other instance watching the space. */
  publish(space: string, commits: Uint8Array[]): void;
  /** Forwards a signal frame to the other instances (best effort, like signalling itself). */
  publishSignal?(space: string, to: string | null, frame: Uint8Array): void;
  /** Called once by the hub: where the link delivers what other instances published. */
  attach(sink: HubSink): void;
}

/** The hub as a link sees it. */
export interface HubSink {
  /** Commits another instance stored for `space`: pushed to every member here. */
  deliver(space: string, commits: Uint8Array[]): void;
  /** A signal frame another instance accepted from one of its connections of `space`. */
  deliverSignal?(space: string, to: string | null, frame: Uint8Array): void;
  /**
   * The link may have missed messages (its connection dropped): every member is closed with 1001 so
   * its device reconnects and pulls what it lacks, the protocol's usual way to catch up.
   */
  resync(reason: string): void;
}

// A space watched for an upgrade that never turned into a member is released after this long.
const UNUSED_WATCH_MS = 30_000;

/**
 * Who is connected to which space, for live fan-out: when one connection's upload is stored, every
 * other connection of that space receives it. In-process by default; with a `HubLink` (Redis pub/sub)
 * the commits also reach the connections of the same space on other relay instances.
 *
 * @example
 * const hub = new SpaceHub({ link: await RedisFanOut.open({ url }) });
 * await hub.ready(space); // before the upgrade: the socket must not miss a publish
 * hub.join(session);
 * hub.publish(session, stored.map((c) => c.bytes));
 */
export class SpaceHub implements HubSink {
  readonly #spaces = new Map<string, Set<HubMember>>();
  readonly #link: HubLink | undefined;
  readonly #observers: ((space: string, commits: Uint8Array[]) => void)[] = [];
  readonly #pushes = new TurnPushes<HubMember>((space) => this.#spaces.get(space) ?? []);

  constructor(options: { link?: HubLink } = {}) {
    this.#link = options.link;
    this.#link?.attach(this);
  }

  /**
   * Resolves once commits of `space` published by other instances reach this hub. Await it before
   * accepting a connection: a device welcomed before that could miss a commit stored elsewhere.
   */
  async ready(space: string): Promise<void> {
    if (!this.#link) return;
    await this.#link.watch(space);
    // If the upgrade that asked fails before anyone joins, do not keep watching forever.
    const timer = setTimeout(() => {
      if (this.count(space) === 0) this.#link?.unwatch(space);
    }, UNUSED_WATCH_MS);
    timer.unref();
  }

  join(member: HubMember): void {
    let set = this.#spaces.get(member.space);
    if (!set) {
      this.#spaces.set(member.space, (set = new Set()));
      // Already watched when `ready` came first (the relay's path); this covers other callers.
      this.#link?.watch(member.space).catch(() => {});
    }
    set.add(member);
  }

  leave(member: HubMember): void {
    const set = this.#spaces.get(member.space);
    set?.delete(member);
    if (set?.size === 0) {
      this.#spaces.delete(member.space);
      this.#link?.unwatch(member.space);
    }
  }

  /** Number of connections to a space (for the per-space connection limit). */
  count(space: string): number {
    return this.#spaces.get(space)?.size ?? 0;
  }

  /**
   * Pushes commits to every member of the sender's space except the sender, and to other instances.
   * `from` may be just the space (commits stored outside a connection: the appeal endpoint). The
   * members get them at the end of this event-loop turn, together with the other uploads of the turn
   * (`TurnPushes`); `onSent` runs then.
   */
  publish(from: Pick<HubMember, "space">, commits: Uint8Array[], onSent?: () => void): void {
    if (commits.length === 0) return;
    this.#pushes.add(from.space, from, commits, onSent);
    this.#link?.publish(from.space, commits);
  }

  /**
   * Forwards a signal frame to the other members of the sender's space: the ones whose device is `to`,
   * or all of them when `to` is null. Only this instance's members: signalling is best effort (peers
   * announce themselves again), so it is not worth a round trip through other instances.
   */
  signal(from: HubMember, to: string | null, frame: Uint8Array): { delivered: number; slow: number } {
    let delivered = 0;
    let slow = 0;
    for (const m of [...(this.#spaces.get(from.space) ?? [])]) {
      if (m === from || !m.signal) continue;
      const outcome = m.signal(to, frame);
      if (outcome === "delivered") delivered++;
      else if (outcome === "slow-reader") slow++;
    }
    // Devices of the space connected to other instances find each other too.
    this.#link?.publishSignal?.(from.space, to, frame);
    return { delivered, slow };
  }

  deliverSignal(space: string, to: string | null, frame: Uint8Array): void {
    for (const m of [...(this.#spaces.get(space) ?? [])]) m.signal?.(to, frame);
  }

  deliver(space: string, commits: Uint8Array[]): void {
    for (const m of [...(this.#spaces.get(space) ?? [])]) m.push(commits);
    for (const observe of this.#observers) observe(space, commits);
  }

  /**
   * Calls `listener` with the commits other instances stored (what `deliver` pushes), after the push:
   * the relay reads the membership operations among them, as it does for its own sessions' uploads.
   */
  observe(listener: (space: string, commits: Uint8Array[]) => void): void {
    this.#observers.push(listener);
  }

  /**
   * Closes this instance's connections to `space` that speak for one of `devices` (see
   * `HubMember.speaksFor`): a device the membership log just removed loses them at once. Returns how
   * many were closed.
   */
  closeDevices(space: string, devices: readonly string[], code: number, reason: string): number {
    if (devices.length === 0) return 0;
    // Pushes still queued for this turn go out first: a removed device still learns of its removal.
    this.#pushes.flush();
    let closed = 0;
    for (const m of [...(this.#spaces.get(space) ?? [])]) {
      if (!devices.some((d) => m.speaksFor?.(d))) continue;
      m.close(code, reason);
      closed++;
    }
    return closed;
  }

  resync(reason: string): void {
    this.closeAll(CLOSE_CODES.goingAway, reason);
  }

  /** Closes every connection, e.g. with 1001 on shutdown. */
  closeAll(code: number, reason: string): void {
    for (const set of [...this.#spaces.values()]) for (const m of [...set]) m.close(code, reason);
  }
}
