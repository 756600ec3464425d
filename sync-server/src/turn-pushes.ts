/** One upload's stored commits waiting to be pushed. */
interface Published<M> {
  /** The members of the space when the commits were stored, the sender excluded. */
  to: Set<M>;
  commits: Uint8Array[];
  onSent: (() => void) | undefined;
}

// A coalesced push carries uploads up to about this many bytes of commits; an upload larger than this
// (a frame holds 1 MiB) still goes in one push of its own, as it always did.
const CHUNK_BYTES = 256 * 1024;

/**
 * Live pushes of one event-loop turn, per space, sent together: every upload stored in a turn (the
 * SQLite store's group commit resolves many at once) reaches each other connection of its space in
 * one `commits` frame instead of one frame per upload, and connections due the same uploads get the
 * very same array, which `RelaySession` encodes once for all (a frame per connection per upload was
 * the relay's largest cost under fan-out: an encode and a write system call each). Who receives an
 * upload is decided when it is published, exactly as when pushes went out at once: the space's other
 * members at that moment. Order is kept: uploads go out in the order they were published.
 *
 * @example
 * const pushes = new TurnPushes<HubMember>((space) => members(space));
 * pushes.add(space, session, stored); // pushed at the end of the turn
 * pushes.flush(); // or now (before closing connections that must still get them)
 */
export class TurnPushes<M extends { push(commits: Uint8Array[]): void }> {
  readonly #members: (space: string) => Iterable<M>;
  #pending = new Map<string, Published<M>[]>();
  #scheduled: ReturnType<typeof setImmediate> | undefined;

  constructor(members: (space: string) => Iterable<M>) {
    this.#members = members;
  }

  /** Queues `commits` of `space`, stored from `from`, for every other member; `onSent` runs once pushed. */
  add(space: string, from: unknown, commits: Uint8Array[], onSent?: () => void): void {
    let list = this.#pending.get(space);
    if (!list) this.#pending.set(space, (list = []));
    const to = new Set<M>();
    for (const m of this.#members(space)) if (m !== from) to.add(m);
    list.push({ to, commits, onSent });
    this.#scheduled ??= setImmediate(() => this.flush());
  }

  /** Pushes everything queued, now. */
  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const uploads of pending.values()) {
      if (uploads.length === 1) {
        // The usual case when a space has few writers: one upload, the same frames for all its receivers.
        const only = uploads[0]!;
        const frames = chunks(uploads);
        for (const member of only.to) for (const chunk of frames) member.push(chunk);
        only.onSent?.();
        continue;
      }
      const members = new Set<M>();
      for (const u of uploads) for (const m of u.to) members.add(m);
      // Members due the same uploads share one array of chunks (usually all but the senders).
      const shared = new Map<string, Uint8Array[][]>();
      for (const member of members) {
        let key = "";
        for (let i = 0; i < uploads.length; i++) if (uploads[i]!.to.has(member)) key += `${i},`;
        let frames = shared.get(key);
        if (!frames) shared.set(key, (frames = chunks(uploads.filter((u) => u.to.has(member)))));
        for (const chunk of frames) member.push(chunk);
      }
      for (const u of uploads) u.onSent?.();
    }
  }
}

function chunks(uploads: Published<unknown>[]): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  let current: Uint8Array[] = [];
  let bytes = 0;
  for (const u of uploads) {
    const size = u.commits.reduce((n, c) => n + c.length, 0);
    if (current.length > 0 && bytes + size > CHUNK_BYTES) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(...u.commits);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
