/**
 * The bytes of unfinished snapshot uploads held in memory by all connections of a relay together
 * (`maxUploadBufferBytes`). A connection reserves each part before keeping it and releases the whole
 * upload when it is stored, refused, abandoned or the connection closes.
 *
 * @example
 * if (!budget.reserve(part.length)) refuseUpload();
 * budget.release(upload.size);
 */
export class UploadBudget {
  readonly #max: number;
  #used = 0;

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  /** Takes `bytes` if they fit under the cap; false (and nothing taken) otherwise. */
  reserve(bytes: number): boolean {
    if (this.#used + bytes > this.#max) return false;
    this.#used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }

  /** Bytes reserved now (metrics, tests). */
  get used(): number {
    return this.#used;
  }
}
