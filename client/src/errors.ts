/**
 * Every error Shoal throws on purpose is a `ShoalError` with a stable `code`, so callers can branch on
 * `err.code` (or `instanceof`) without parsing messages, which are written for people and may change.
 *
 * @example
 * try { await db.patients.insert(row); }
 * catch (e) { if (e instanceof QuotaExceeded) showStorageFullBanner(); else throw e; }
 */
export class ShoalError extends Error {
  /** Stable machine-readable code, e.g. `"QuotaExceeded"`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = code;
  }
}

/**
 * A collection declaration is refused (a unique or auto-increment index, a reserved or malformed name,
 * a bad `text` or `counters` path), the declaration would shrink the database on disk (a collection or
 * index no longer declared, an index that changed kind), or a query names an index the collection does
 * not declare.
 */
export class SchemaError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SchemaError", message, options);
  }
}

/** A value or argument is not acceptable (unknown collection, reserved field name, bad id, ...). */
export class ValidationError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ValidationError", message, options);
  }
}

/** The browser refused to store more data. Nothing of the failed commit was written. */
export class QuotaExceeded extends ShoalError {
  constructor(
    message = "Storage is full: the browser refused to store more data. Nothing was saved.",
    options?: { cause?: unknown },
  ) {
    super("QuotaExceeded", message, options);
  }
}

/**
 * A transaction (or a commit made by an older version) would seal to more bytes than one sealed commit
 * may hold (`MAX_COMMIT_BYTES`), so it could never sync. At commit time nothing was written and no
 * sequence number was taken: split the edit into smaller transactions. A commit already stored that is
 * this large blocks its device's uploads in its space until `db.rollBackUnsyncable()` removes it.
 *
 * @example
 * try { await db.notes.update(id, (d) => void (d.body = text)); }
 * catch (e) { if (e instanceof CommitTooLarge) alert("Too long to sync: save it in parts."); else throw e; }
 */
export class CommitTooLarge extends ShoalError {
  /** The space whose commit is too large. */
  readonly space: string;
  /** Exact size in bytes of the sealed commit it would make. */
  readonly bytes: number;
  /** The most a sealed commit may hold, in bytes. */
  readonly limit: number;
  constructor(message: string, details: { space: string; bytes: number; limit: number }) {
    super("CommitTooLarge", message);
    this.space = details.space;
    this.bytes = details.bytes;
    this.limit = details.limit;
  }
}

/** A record, space or commit that was asked for does not exist (or was deleted). */
export class NotFound extends ShoalError {
  constructor(message: string) {
    super("NotFound", message);
  }
}

/** The database was closed; open it again to go on. */
export class DatabaseClosed extends ShoalError {
  constructor(message = "The database is closed.") {
    super("DatabaseClosed", message);
  }
}

/** A frame broke the wire protocol (truncated, oversized, unknown version or type, bad field). */
export class ProtocolError extends ShoalError {
  /** Finer reason, used as a metrics label by the relay, e.g. `"truncated"`, `"oversized"`. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super("ProtocolError", message);
    this.reason = reason;
  }
}

/** A sealed commit could not be opened: wrong key, or the bytes or their routing header were altered. */
export class DecryptError extends ShoalError {
  constructor(
    message = "A commit could not be decrypted: wrong key, or it was altered in transit.",
    options?: { cause?: unknown },
  ) {
    super("DecryptError", message, options);
  }
}

/**
 * A commit is not signed by the device it names: its author key is not that device's key
 * (`wrong-author`), or the Ed25519 signature over its bytes does not verify (`bad-signature`). It is
 * refused alone, before anything in it is decrypted, and says nothing about the other commits of its
 * batch (like a `DecryptError`, which is what an altered commit gave before commits were signed).
 */
export class SignatureInvalid extends ShoalError {
  /** The device the commit names (hex). */
  readonly device: string;
  /** Its sequence number. */
  readonly seq: number;
  /** `wrong-author` or `bad-signature`. */
  readonly reason: "wrong-author" | "bad-signature";
  constructor(
    message: string,
    details: { device: string; seq: number; reason: "wrong-author" | "bad-signature" },
  ) {
    super("SignatureInvalid", message);
    this.device = details.device;
    this.seq = details.seq;
    this.reason = details.reason;
  }
}

/**
 * This device has no signing keys, so it cannot make commits others accept: its database was created
 * where WebCrypto was missing (an insecure context) or by a Shoal version before signed commits. It
 * works locally; to sync, open the app over https or on localhost with a new database.
 */
export class UnsignedDevice extends ShoalError {
  constructor(
    message = "This device has no signing keys (its database was created without WebCrypto, or by an " +
      "older Shoal version), so it cannot sync. Open the app over https or on localhost with a new database.",
  ) {
    super("UnsignedDevice", message);
  }
}

/** An invitation link is malformed or carries a key that does not fit. */
export class InvalidInvitation extends ShoalError {
  constructor(message: string) {
    super("InvalidInvitation", message);
  }
}

/**
 * The page lacks what Shoal needs from the browser: WebCrypto (`crypto.subtle`, which browsers give only
 * to secure contexts: https, or http on localhost) or IndexedDB (missing in some private modes and
 * sandboxed frames). `missing` says which, for code; the message says what to do, for people.
 *
 * @example
 * try { db.sync({ relay }); }
 * catch (e) { if (e instanceof InsecureContext) showBanner(e.message); else throw e; }
 */
export class InsecureContext extends ShoalError {
  readonly missing: "WebCrypto" | "IndexedDB";
  constructor(missing: "WebCrypto" | "IndexedDB", message?: string) {
    super(
      "InsecureContext",
      message ??
        (missing === "WebCrypto"
          ? "Shoal needs a secure context to encrypt and sync: open this app over https, or on localhost. " +
            "Plain http from another address has no WebCrypto."
          : "Shoal needs IndexedDB to keep data on this device, and this browser window has none " +
            "(a private window or a sandboxed frame may disable it)."),
    );
    this.missing = missing;
  }
}

/**
 * A write into a space this device left and joined again, before its own earlier commits there are back:
 * the relay and the other devices hold them under sequence numbers 1..`ownCommits`, so a new commit may
 * only follow them. Sync brings them back by itself (from the relay or a peer); write again then.
 */
export class RejoinPending extends ShoalError {
  readonly space: string;
  readonly ownCommits: number;
  constructor(space: string, ownCommits: number) {
    super(
      "RejoinPending",
      `This device left space ${space} with ${ownCommits} commits of its own and joined it again: ` +
        "it can write there once those are back (sync with the relay or a device that has them).",
    );
    this.space = space;
    this.ownCommits = ownCommits;
  }
}

/**
 * Why a relay refused a space's connection: `token` (no, malformed or wrong token for a registered
 * space) or `claim` (the relay does not know the space and this device offered no valid claim by its
 * creator, PROTOCOL.md 1 "Space claims": join it again with an invitation link that carries one, or ask
 * a member who has one to sync first).
 */
export type AccessDeniedReason =
  | "token"
  | "claim"
  /** The space's membership log removed this device (PROTOCOL.md 10): it never gets access again. */
  | "removed"
  /** This device is no member of the space and shows no invitation (or no valid device proof). */
  | "not-member"
  /** The invitation this device joins by was already used up, has expired, or was revoked. */
  | "invitation-used"
  | "invitation-expired"
  | "invitation-revoked"
  | "invitation-unknown";

/**
 * The relay refused the connection's credentials for a space. The session keeps retrying, slowly (a
 * member holding the claim may register the space meanwhile); the space's transport state is `refused`.
 *
 * @example
 * const e = db.status.lastError;
 * if (e instanceof AccessDenied && e.reason === "claim") askForANewInvitation();
 */
export class AccessDenied extends ShoalError {
  /** Stable: see `AccessDeniedReason`. */
  readonly reason: AccessDeniedReason;
  constructor(
    message = "The relay refused access to this space (wrong or missing token).",
    reason: AccessDeniedReason = "token",
  ) {
    super("AccessDenied", message);
    this.reason = reason;
  }
}

/**
 * A space pinned to a region (`createSpace({ residency })`) was not synced with a relay, because the
 * relay did not confirm that it is in that region (it is in another one, declares none, or predates
 * residency): this device sent it nothing, not even a `hello`. Shown in `db.status.lastError` (and the
 * space's transport is `refused`) until a relay of the region is used. Peers and bundle files still
 * carry the space.
 *
 * @example
 * const e = db.status.get().lastError;
 * if (e?.code === "ResidencyRefused") showBanner(e.message);
 */
export class ResidencyRefused extends ShoalError {
  /** The region the space is pinned to. */
  readonly region: string;
  /** The relay (its URL as the transport labels it). */
  readonly relay: string;
  constructor(region: string, relay: string) {
    super(
      "ResidencyRefused",
      `This space must stay in region "${region}", and the relay ${relay} is not in that region ` +
        `(it declares another region or none), so nothing of the space was sent to it. ` +
        `Sync it through a relay in "${region}", with a peer, or by file.`,
    );
    this.region = region;
    this.relay = relay;
  }
}

/** Why this device may not do something in a space: see `NotPermitted`. */
export type NotPermittedReason = "reader" | "removed" | "not-a-member" | "not-admin" | "not-creator";

/**
 * The space's membership log does not allow this device to do it: write as a `reader`, write after
 * being removed, manage members without being an admin, start the membership of a space it did not
 * create. Nothing was written. Commits that break the same rules arriving from elsewhere are
 * quarantined with reason `membership`.
 *
 * @example
 * try { await db.patients.update(id, fn); } catch (e) { if (e instanceof NotPermitted) showReadOnly(e.message); }
 */
export class NotPermitted extends ShoalError {
  /** Stable, see `NotPermittedReason`. */
  readonly reason: NotPermittedReason;
  constructor(reason: NotPermittedReason, message: string) {
    super("NotPermitted", message);
    this.reason = reason;
  }
}

/**
 * A bundle (a file of sealed commits, see `exportBundle`) cannot be imported. Nothing of it was applied.
 * `reason` says why, for code: `not-a-bundle`, `unsupported-version`, `malformed`, `corrupt` (a hash does
 * not match: altered bytes), `truncated` (cut before its header ended), `too-large`, `unknown-space` (this
 * device has not joined the bundle's space), `foreign` (a commit of another space), `unopenable` (a commit
 * does not open with this device's key for the space, or breaks its device's chain).
 *
 * @example
 * try { await db.importBundle(file); }
 * catch (e) { if (e instanceof InvalidBundle && e.reason === "unknown-space") askForInvitation(); else throw e; }
 */
export class InvalidBundle extends ShoalError {
  /** Finer reason, stable: see the class description. */
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super("InvalidBundle", message, options);
    this.reason = reason;
  }
}

/**
 * A commit from another device was authentic (it opened with the space's key) but could not be applied:
 * malformed plaintext, over a content limit (`DEFAULT_CONTENT_LIMITS`), a reserved key, changes
 * Automerge refuses, content storage refuses, or it depends on such a commit. It was kept aside in the
 * quarantine (`db.quarantine()`), never applied, and reported once; its sequence slot counts as held,
 * so the device's later commits and every other commit go on. `reason` is stable: `malformed`,
 * `limits`, `reserved`, `misplaced`, `automerge`, `storage`, `dependency`.
 *
 * @example
 * db.status.subscribe((s) => { if (s.lastError?.code === "CommitQuarantined") warnAdmin(s.lastError); });
 */
export class CommitQuarantined extends ShoalError {
  /** Why, stable: see the class description. */
  readonly reason: string;
  /** The quarantined commit: `<space>.<device>.<seq>`. */
  readonly commit: string;
  constructor(reason: string, commit: string, message: string, options?: { cause?: unknown }) {
    super("CommitQuarantined", message, options);
    this.reason = reason;
    this.commit = commit;
  }
}

/**
 * A `db.transact(fn, { durable })` stopped waiting before the durability it asked for was reached:
 * `reason` is `closed` (the database was closed), `aborted` (its `signal` fired) or `timeout` (its
 * `timeout` ran out). The commits were saved on this device all the same and sync goes on uploading
 * them: nothing is rolled back. `commits` names them (check later with `db.durability(id)`), and
 * `result` holds what the transaction function returned.
 *
 * @example
 * try { await db.transact(fn, { durable: "relay", timeout: 10_000 }); }
 * catch (e) { if (e instanceof DurabilityPending) toast("Saved on this device; not on the server yet."); else throw e; }
 */
export class DurabilityPending extends ShoalError {
  /** Why the wait ended: `closed`, `aborted` or `timeout`. */
  readonly reason: "closed" | "aborted" | "timeout";
  /** The transaction's commits, saved on this device (`<space>.<device>.<seq>`). */
  readonly commits: readonly string[];
  /** What the transaction function returned. */
  readonly result: unknown;
  constructor(
    reason: "closed" | "aborted" | "timeout",
    commits: readonly string[],
    result: unknown,
    options?: { cause?: unknown },
  ) {
    const why =
      reason === "closed"
        ? "the database was closed"
        : reason === "aborted"
          ? "the wait was aborted"
          : "the wait timed out";
    super(
      "DurabilityPending",
      `Saved on this device, but ${why} before the relay acknowledged it: the commit is kept and sync goes on uploading it.`,
      options,
    );
    this.reason = reason;
    this.commits = commits;
    this.result = result;
  }
}

/**
 * An option this version does not implement, refused before anything was written: for now
 * `durable: { devices: k }` (waiting for signed receipts from other member devices).
 */
export class NotSupported extends ShoalError {
  /** The option refused, e.g. `durable.devices`. */
  readonly feature: string;
  constructor(feature: string, message: string) {
    super("NotSupported", message);
    this.feature = feature;
  }
}

/**
 * The database has an at-rest lock (`openDatabase({ lock })`) and is locked: by `db.lock()`, by its idle
 * time, or because it was opened without `lock` (then open it with `lock: { passphrase }`). Nothing is
 * read or written until `db.unlock(passphrase)`; nothing is lost.
 *
 * @example
 * try { await db.notes.toArray(); }
 * catch (e) { if (e instanceof Locked) showPinPrompt(); else throw e; }
 */
export class Locked extends ShoalError {
  constructor(message = "The database is locked: unlock it with its passphrase.") {
    super("Locked", message);
  }
}

/**
 * The passphrase given to `openDatabase({ lock })`, `db.unlock` or `db.changePassphrase` does not open
 * this database's key. Nothing was changed: try again.
 */
export class WrongPassphrase extends ShoalError {
  constructor(message = "Wrong passphrase: it does not open this database.") {
    super("WrongPassphrase", message);
  }
}

/**
 * A take from a bounded counter (`collection.take`) asked for more than this device holds rights to:
 * refused at once, before anything was written, so a device offline can never spend what another device
 * may be spending. `held` is what this device may take now; `total` what all devices together may take
 * (the value minus its `min`). This device has asked the others for the shortfall: once a device that
 * holds rights sees the request (both online), it grants them, and a later take can succeed.
 *
 * @example
 * try { await db.stock.take(id, "doses", 3); }
 * catch (e) { if (e instanceof InsufficientRights) toast(`Only ${e.held} here (${e.total} in all).`); else throw e; }
 */
export class InsufficientRights extends ShoalError {
  /** The bounded counter field. */
  readonly field: string;
  /** What this device may take now. */
  readonly held: number;
  /** What all devices together may take: the counter's value minus its bound. */
  readonly total: number;
  /** What the refused take asked for. */
  readonly wanted: number;
  constructor(field: string, wanted: number, held: number, total: number) {
    super(
      "InsufficientRights",
      `Cannot take ${wanted} from "${field}": this device holds ${held} of the ${total} that may be taken in all. ` +
        (total >= wanted
          ? "The rest is held by other devices; it has been asked for and arrives when they are online."
          : "There is not that much left."),
    );
    this.field = field;
    this.wanted = wanted;
    this.held = held;
    this.total = total;
  }
}
