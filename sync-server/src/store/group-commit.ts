/** What one job of a group came to: its value, or the error that failed it alone. */
export type GroupOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<J, R> {
  job: J;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Collects jobs submitted during one turn of the event loop and runs them together in one call of
 * `run` (for `SqliteStore`: one transaction, so one fsync for every append of the turn). `run` is
 * synchronous and returns one outcome per job, in order; each caller's promise settles only after
 * `run` returned, i.e. after the group's transaction committed. If `run` throws, the group failed as a
 * whole (a full disk, an I/O error) and every job of it is rejected with that error.
 *
 * Why a turn is the right window: better-sqlite3 works on the main thread, so nothing can arrive
 * while a transaction and its fsync run; but every frame Node read from the sockets in one poll phase
 * reaches `submit` before the check phase, where `setImmediate` runs the group. The slower the
 * fsync, the more frames wait in the kernel for the next poll, and the larger the next group.
 *
 * @example
 * const group = new GroupCommit<Job, Result>((jobs) => db.transaction(() => jobs.map(runOne)).immediate());
 * const result = await group.submit(job); // settles after the transaction holding it committed
 */
export class GroupCommit<J, R> {
  readonly #run: (jobs: J[]) => GroupOutcome<R>[];
  #waiting: Waiting<J, R>[] = [];
  #scheduled: ReturnType<typeof setImmediate> | undefined;

  constructor(run: (jobs: J[]) => GroupOutcome<R>[]) {
    this.#run = run;
  }

  /** Queues `job` for the group of this turn; settles with its own outcome once the group ran. */
  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#waiting.push({ job, resolve, reject });
      this.#scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Runs the waiting jobs now (also used before the store closes, so that no submitted job is dropped). */
  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const group = this.#waiting;
    this.#waiting = [];
    if (group.length === 0) return;
    let outcomes: GroupOutcome<R>[];
    try {
      outcomes = this.#run(group.map((w) => w.job));
    } catch (error) {
      for (const w of group) w.reject(error);
      return;
    }
    group.forEach((w, i) => {
      const outcome = outcomes[i];
      if (!outcome) w.reject(new Error("The group commit returned no outcome for this job."));
      else if (outcome.ok) w.resolve(outcome.value);
      else w.reject(outcome.error);
    });
  }
}
