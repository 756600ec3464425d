/**
 * A FIFO async lock. Shoal runs one transaction function at a time per database handle, so two
 * transactions of one page never build Automerge changes on the same document version with the same
 * actor (which Automerge would refuse as duplicate sequence numbers).
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;

  /** Resolves with a release function once the lock is held. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const prev = this.#tail;
    this.#tail = prev.then(() => held);
    this.#waiting++;
    return prev.then(() => {
      this.#waiting--;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        release();
      };
    });
  }

  /** How many callers wait for the lock (not counting the holder). */
  get waiting(): number {
    return this.#waiting;
  }
}
