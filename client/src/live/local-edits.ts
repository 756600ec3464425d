/** A row as a live query holds it. */
export type EditedRow = { readonly id: string } & Record<string, unknown>;

/** What a listener of one table hears about this tab's own commits. */
export interface LocalEditListener {
  /** Rows a commit being written sets (`undefined`: deleted), before IndexedDB has them. */
  edited(ids: readonly string[], rows: readonly (EditedRow | undefined)[]): void;
  /** Those rows are now in IndexedDB: reads from here on see them. */
  settled(ids: readonly string[]): void;
  /** A write failed: none of what it announced will be stored; read everything again. */
  failed(): void;
}

/**
 * This tab's commits, told to its live queries the moment they are made, before the IndexedDB
 * transaction that stores them completes (issue 15: keystroke to screen must not wait for the disk).
 * Durability is unchanged: `update` still resolves only once the commit is stored, and nothing is
 * acknowledged to a relay or a peer before that; a live query merely shows the edit a few
 * milliseconds earlier, and if the write fails (a full disk) it reads the stored state again.
 *
 * Other tabs keep learning of the commit from Dexie's `storagemutated` event once it is stored.
 */
export class LocalEdits {
  readonly #byTable = new Map<string, Set<LocalEditListener>>();

  /** True when some live query follows `table`: only then are rows made for it. */
  watched(table: string): boolean {
    return (this.#byTable.get(table)?.size ?? 0) > 0;
  }

  /** Follows `table`; returns the function that stops it. */
  listen(table: string, listener: LocalEditListener): () => void {
    let set = this.#byTable.get(table);
    if (!set) this.#byTable.set(table, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#byTable.delete(table);
    };
  }

  /** Announces rows a queued commit sets in `table`. */
  edited(table: string, ids: readonly string[], rows: readonly (EditedRow | undefined)[]): void {
    for (const l of this.#listeners(table)) l.edited(ids, rows);
  }

  /** Says that the rows of `table` announced for `ids` are stored. */
  settled(table: string, ids: readonly string[]): void {
    for (const l of this.#listeners(table)) l.settled(ids);
  }

  /** Says that a write failed: every announced row that is not settled will never be. */
  failed(): void {
    for (const set of [...this.#byTable.values()]) for (const l of [...set]) l.failed();
  }

  #listeners(table: string): LocalEditListener[] {
    // A copy: a listener may unsubscribe (and so change the set) while it is told.
    return [...(this.#byTable.get(table) ?? [])];
  }
}
