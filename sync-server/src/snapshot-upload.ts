import { toHex, type SnapshotPutMessage } from "@shoal/client/protocol";
import type { UploadBudget } from "./upload-budget.ts";

/** What one `snapshot-put` part did to the connection's upload. */
export type UploadStep =
  /** Parts out of order (not the next one, another `parts` or vector than part 0): a protocol error. */
  | { kind: "out-of-order" }
  /** More parts are expected (or the upload was refused and its parts are dropped unread). */
  | { kind: "pending" }
  /** The last part of a refused upload: nothing to store. */
  | { kind: "dropped" }
  /** The last part: the whole blob, to store. Call `release()` once the store has it (or refused it). */
  | { kind: "complete"; blob: Uint8Array; release: () => void };

/** How an upload tells its connection that it refused it (non-fatal `too-large`, PROTOCOL.md 6). */
export interface UploadHooks {
  refuse(message: string, reason: "too-large" | "upload-buffer" | "upload-stalled"): void;
}

interface Upload {
  parts: number;
  next: number;
  /** The vector of part 0, as `deviceHex:seq,...` in frame order: later parts must repeat it exactly. */
  vectorKey: string;
  chunks: Uint8Array[];
  size: number;
  /** Refused (too large, no budget, stalled): the remaining parts are dropped unread. */
  refused: boolean;
}

/**
 * One connection's unfinished snapshot upload: the parts buffered in order until the last, bounded by
 * the snapshot size limit and by the relay-wide budget of bytes held for unfinished uploads, and
 * refused when its next part does not come within the idle timeout (WebSocket pongs keep a connection
 * open; they must not keep its half upload in memory too). A new part 0 abandons an unfinished upload.
 *
 * @example
 * const step = uploads.take(m);
 * if (step.kind === "complete") try { await store(step.blob); } finally { step.release(); }
 */
export class SnapshotUpload {
  readonly #maxBytes: number;
  readonly #stallMs: number;
  readonly #budget: UploadBudget | undefined;
  readonly #hooks: UploadHooks;
  #upload: Upload | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: { maxBytes: number; stallMs: number; budget?: UploadBudget; hooks: UploadHooks }) {
    this.#maxBytes = opts.maxBytes;
    this.#stallMs = opts.stallMs;
    this.#budget = opts.budget;
    this.#hooks = opts.hooks;
  }

  /** Takes one part, in the rules of PROTOCOL.md section 6. */
  take(m: SnapshotPutMessage): UploadStep {
    const vectorKey = m.vector.map((e) => `${toHex(e.device)}:${e.seq}`).join(",");
    if (m.part === 0) {
      this.drop();
      this.#upload = { parts: m.parts, next: 0, vectorKey, chunks: [], size: 0, refused: false };
    }
    const upload = this.#upload;
    if (!upload || m.part !== upload.next || m.parts !== upload.parts || vectorKey !== upload.vectorKey) {
      this.drop();
      return { kind: "out-of-order" };
    }
    upload.next += 1;
    if (!upload.refused) {
      const size = upload.size + m.bytes.length;
      if (size > this.#maxBytes) {
        this.#refuse(upload, `The snapshot exceeds ${this.#maxBytes} bytes; it was not stored.`, "too-large");
      } else if (this.#budget && !this.#budget.reserve(m.bytes.length)) {
        this.#refuse(
          upload,
          "The relay holds too many unfinished snapshot uploads; try again later.",
          "upload-buffer",
        );
      } else {
        upload.size = size;
        upload.chunks.push(m.bytes);
      }
    }
    if (upload.next < upload.parts) {
      this.#armStall();
      return { kind: "pending" };
    }
    clearTimeout(this.#timer);
    this.#upload = undefined;
    if (upload.refused) return { kind: "dropped" };
    const blob = concat(upload.chunks, upload.size);
    upload.chunks = [];
    // Held until the store has it (or refused it): only then is the memory free again.
    return { kind: "complete", blob, release: () => this.#budget?.release(upload.size) };
  }

  /** Forgets an unfinished upload and frees what it held (a new part 0, a closed connection). */
  drop(): void {
    clearTimeout(this.#timer);
    const upload = this.#upload;
    this.#upload = undefined;
    if (upload && !upload.refused) this.#budget?.release(upload.size);
  }

  /** Refuses the rest of an upload: its parts are dropped unread from now on. */
  #refuse(upload: Upload, message: string, reason: "too-large" | "upload-buffer" | "upload-stalled"): void {
    this.#budget?.release(upload.size);
    upload.size = 0;
    upload.chunks = [];
    upload.refused = true;
    this.#hooks.refuse(message, reason);
  }

  #armStall(): void {
    clearTimeout(this.#timer);
    const timer = setTimeout(() => {
      const upload = this.#upload;
      // Refused rather than forgotten: parts that still come are dropped unread, not a protocol error.
      if (upload && !upload.refused)
        this.#refuse(upload, "The snapshot upload stalled; its parts so far were dropped.", "upload-stalled");
    }, this.#stallMs);
    timer.unref?.();
    this.#timer = timer;
  }
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
