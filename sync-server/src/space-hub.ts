/** What the hub needs from a connection: where it belongs and how to push commits to it. */
export interface HubMember {
  readonly space: string;
  /** Sends freshly stored commits of the member's space; the member applies its own backpressure rule. */
  push(commits: Uint8Array[]): void;
  /** Closes the connection (shutdown). */
  close(code: number, reason: string): void;
}

/**
 * Who is connected to which space, for live fan-out: when one connection's upload is stored, every
 * other connection of that space receives it. In-process only; a multi-instance relay would put a
 * pub/sub channel behind the same methods.
 *
 * @example
 * hub.join(session);
 * hub.publish(session, stored.map((c) => c.bytes));
 */
export class SpaceHub {
  readonly #spaces = new Map<string, Set<HubMember>>();

  join(member: HubMember): void {
    let set = this.#spaces.get(member.space);
    if (!set) this.#spaces.set(member.space, (set = new Set()));
    set.add(member);
  }

  leave(member: HubMember): void {
    const set = this.#spaces.get(member.space);
    set?.delete(member);
    if (set?.size === 0) this.#spaces.delete(member.space);
  }

  /** Number of connections to a space (for the per-space connection limit). */
  count(space: string): number {
    return this.#spaces.get(space)?.size ?? 0;
  }

  /** Pushes commits to every member of the sender's space except the sender. */
  publish(from: HubMember, commits: Uint8Array[]): void {
    if (commits.length === 0) return;
    for (const m of [...(this.#spaces.get(from.space) ?? [])]) if (m !== from) m.push(commits);
  }

  /** Closes every connection, e.g. with 1001 on shutdown. */
  closeAll(code: number, reason: string): void {
    for (const set of [...this.#spaces.values()]) for (const m of [...set]) m.close(code, reason);
  }
}
