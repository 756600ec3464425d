import { Dexie, type DBCore, type Middleware } from "dexie";
import { DatabaseClosed, Locked, ValidationError } from "../errors.ts";
import { randomBytes } from "../ids.ts";
import { ValueStore } from "../live/value-store.ts";
import type { IdentityKeeping } from "../identity/identity-keeping.ts";
import type { Replica } from "../replica/replica.ts";
import { atRestMiddleware, LOCK_META_KEY } from "./at-rest-middleware.ts";
import { DataKey } from "./data-key.ts";
import { IDENTITY_AS_BYTES } from "./identity-as-bytes.ts";
import { DEFAULT_ITERATIONS, unwrapDataKey, wrapDataKey, type LockRecord } from "./passphrase-wrap.ts";

/** `openDatabase({ lock })`: encrypt the database at rest under a passphrase. */
export interface LockOptions {
  /** The passphrase (or PIN) that opens the database's data key. */
  passphrase: string;
  /** Lock by itself after this many minutes without a call into the database's API. Default: never. */
  idleMinutes?: number;
  /**
   * PBKDF2-SHA-256 iterations for a new database or a new passphrase (default 600,000, OWASP's figure).
   * Lower only in tests: every guess at the passphrase costs this many.
   */
  iterations?: number;
}

/** Whether a locked database is open for reads and writes now. */
export type LockState = "unlocked" | "locked";

type MetaRow = { key: string; value: unknown };

/**
 * The at-rest lock of one open database: holds its data key while unlocked, wipes it on `lock()` (or
 * after `idleMinutes` without use), and rewraps it on a passphrase change. The data key itself never
 * changes, so changing the passphrase rewrites one small record, not the database.
 *
 * @example
 * const lock = new AtRestLock({ passphrase: "1234", idleMinutes: 5 });
 * const dexie = await openDexie(name, specs, lock.middleware);
 * await lock.open(dexie);
 */
export class AtRestLock {
  readonly #key = new DataKey();
  readonly #options: LockOptions;
  readonly state = new ValueStore<LockState>("locked");
  /** Encrypts and decrypts every stored value (register before the Dexie database opens). */
  readonly middleware: Middleware<DBCore>;
  /** How the device keys are stored: as encrypted bytes, never as `CryptoKey` objects. */
  readonly keeping: IdentityKeeping = IDENTITY_AS_BYTES;
  #dexie: Dexie | undefined;
  #replica: Replica | undefined;
  #lastUse = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: LockOptions) {
    if (typeof options?.passphrase !== "string" || options.passphrase === "")
      throw new ValidationError("lock needs a passphrase (a non-empty string).");
    const idle = options.idleMinutes;
    if (idle !== undefined && !(typeof idle === "number" && idle > 0))
      throw new ValidationError("lock.idleMinutes must be a positive number of minutes.");
    this.#options = options;
    this.middleware = atRestMiddleware(this.#key);
  }

  /**
   * Unlocks `dexie` (opened with `middleware`) with the passphrase, or on a new database makes its data
   * key and lock record. A database that already holds data without a lock is refused: adding a lock
   * to it (encrypting what is there) is not supported.
   */
  async open(dexie: Dexie): Promise<void> {
    this.#dexie = dexie;
    const meta = dexie.table<MetaRow, string>("_meta");
    let record = (await meta.get(LOCK_META_KEY))?.value as LockRecord | undefined;
    if (!record) {
      // Derived before the transaction: WebCrypto's promises would end it.
      const dataKey = randomBytes(32);
      const mine = await wrapDataKey(dataKey, this.#options.passphrase, this.#iterations());
      record = await dexie.transaction("rw", meta, async () => {
        const there = (await meta.get(LOCK_META_KEY))?.value as LockRecord | undefined;
        if (there) return there; // another tab made it first: use its key
        if ((await meta.count()) > 0)
          throw new ValidationError(
            "This database was created without a lock and holds data: adding a lock to it is not supported. Open it without lock, or use a new database name.",
          );
        await meta.put({ key: LOCK_META_KEY, value: mine });
        return undefined;
      });
      if (!record) {
        this.#key.hold(dataKey);
        dataKey.fill(0);
        return;
      }
    }
    const key = await unwrapDataKey(record, this.#options.passphrase);
    this.#key.hold(key);
    key.fill(0);
  }

  /** Starts guarding `replica` (after `Replica.open`): `Locked` while locked, the idle timer while not. */
  attach(replica: Replica): void {
    this.#replica = replica;
    replica.guard = () => {
      if (!this.#key.held) throw new Locked();
      this.#lastUse = Date.now();
    };
    replica.isLocked = () => !this.#key.held;
    replica.onClose(() => this.#stopTimer());
    this.#lastUse = Date.now();
    this.state.set("unlocked");
    this.#armTimer();
  }

  /**
   * Locks now: waits for transactions under way and queued writes, then wipes the data key, drops the
   * device keys and every decrypted document held in memory. Live queries re-run and report `Locked`.
   */
  async lock(): Promise<void> {
    const replica = this.#need();
    if (!this.#key.held) return;
    const release = await replica.lock.acquire();
    try {
      await replica.drain();
      this.#key.forget();
      replica.identity = undefined;
      replica.cache.clear();
      this.#stopTimer();
      this.state.set("locked");
    } finally {
      release();
    }
    rerunLiveQueries();
  }

  /** Unlocks with the passphrase (`WrongPassphrase` otherwise, and it stays locked). */
  async unlock(passphrase: string): Promise<void> {
    const replica = this.#need();
    if (this.#key.held) {
      // Already open: still check the passphrase, so a wrong one is never taken for right.
      (await unwrapDataKey(await this.#record(), passphrase)).fill(0);
      return;
    }
    const key = await unwrapDataKey(await this.#record(), passphrase);
    this.#key.hold(key);
    key.fill(0);
    try {
      const stored = (await this.#dexie!.table<MetaRow, string>("_meta").get("identity"))?.value as
        { device: string } | undefined;
      replica.identity = stored?.device === replica.device ? await this.keeping.load(stored) : undefined;
    } catch (e) {
      this.#key.forget();
      throw e;
    }
    this.#lastUse = Date.now();
    this.state.set("unlocked");
    this.#armTimer();
    rerunLiveQueries();
  }

  /**
   * Rewraps the data key under `next` (a new salt), once `current` is checked: nothing else is
   * re-encrypted. Works locked or unlocked and leaves that state as it was.
   */
  async changePassphrase(current: string, next: string): Promise<void> {
    this.#need();
    const key = await unwrapDataKey(await this.#record(), current);
    try {
      const record = await wrapDataKey(key, next, this.#iterations());
      await this.#dexie!.table<MetaRow, string>("_meta").put({ key: LOCK_META_KEY, value: record });
    } finally {
      key.fill(0);
    }
  }

  #iterations(): number {
    return this.#options.iterations ?? DEFAULT_ITERATIONS;
  }

  #need(): Replica {
    if (!this.#replica) throw new ValidationError("This database has no lock.");
    if (this.#replica.closed) throw new DatabaseClosed();
    return this.#replica;
  }

  async #record(): Promise<LockRecord> {
    const row = await this.#dexie!.table<MetaRow, string>("_meta").get(LOCK_META_KEY);
    if (!row) throw new ValidationError("This database's lock record is missing.");
    return row.value as LockRecord;
  }

  #armTimer(): void {
    this.#stopTimer();
    const minutes = this.#options.idleMinutes;
    if (minutes === undefined || !this.#key.held) return;
    const idleMs = minutes * 60_000;
    const wait = Math.max(0, this.#lastUse + idleMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#key.held || this.#replica?.closed) return;
      // Used since the timer was set: wait out the rest.
      if (Date.now() - this.#lastUse < idleMs) return this.#armTimer();
      this.lock().catch((e: unknown) => console.warn("Shoal: the idle lock failed", e));
    }, wait);
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Makes every live query of the page run again now: after a lock they report `Locked` instead of
 * showing what they last read as if nothing happened; after an unlock they read again.
 */
function rerunLiveQueries(): void {
  Dexie.on.storagemutated.fire({ all: true } as unknown as Parameters<
    typeof Dexie.on.storagemutated.fire
  >[0]);
}
