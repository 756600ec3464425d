import { NotFound, ValidationError } from "../errors.ts";
import { live } from "../live/observable.ts";
import type { Subscription } from "../live/observable.ts";
import { spliceText } from "../replica/draft.ts";
import { diffSplice, mapPosition, rebaseSplice, type Splice } from "./text-splice.ts";

/** The part of a collection a text field needs (a `Collection` of any record type has it). */
export interface TextFieldCollection {
  get(id: string): Promise<object | undefined>;
  // A method (not a property) so that a `Collection<Patient>`, whose draft is a `Patient`, fits.
  update(id: string, fn: (draft: object) => void): Promise<void>;
}

/**
 * Where a text field stands: `loading` until the record was read; `saved` when every keystroke is in
 * the database; `editing` while keystrokes wait for the pause that saves them; `saving` while they are
 * written; `failed` when the last save failed (the text stays in the field and the next keystroke or
 * `flush()` tries again); `unavailable` when the record is missing or the field holds something other
 * than text (read-only then, so nothing is overwritten).
 */
export type TextFieldStatus = "loading" | "saved" | "editing" | "saving" | "failed" | "unavailable";

/** What a text field shows, for a render. */
export interface TextFieldState {
  readonly value: string;
  readonly status: TextFieldStatus;
  /** Why the field failed or is unavailable. */
  readonly error: Error | undefined;
  readonly readOnly: boolean;
}

/** The element a text field edits: an `HTMLTextAreaElement` or `HTMLInputElement` has all of it. */
export interface TextFieldElement {
  value: string;
  readonly selectionStart: number | null;
  readonly selectionEnd: number | null;
  readonly selectionDirection: "forward" | "backward" | "none" | null;
  setSelectionRange(start: number, end: number, direction?: "forward" | "backward" | "none"): void;
}

/** Options of a text field. */
export interface TextFieldOptions {
  /** Quiet time after a keystroke before the queued keystrokes are saved, in ms (default 300). */
  saveDelay?: number;
  /** How a field holding something other than text is shown (read-only); default: empty. */
  display?: (value: unknown) => string;
}

/** A keystroke (or paste, cut...): the edit, and the text it was made against. */
interface Keystroke {
  seen: string;
  splice: Splice;
}

/**
 * Binds one text field of one record to an editing element, without React (`useTextField` is a thin
 * hook over it). Each keystroke becomes a splice against the text the element showed, queued and
 * written in order as Automerge text splices, each re-expressed against the record's text at write
 * time: an autosave never writes a stale whole value. Changes from elsewhere are taken into the element
 * only while nothing is queued, from a fresh read, with the selection moved through them.
 */
export class TextFieldSync {
  readonly #collection: TextFieldCollection;
  readonly #id: string;
  readonly #path: string;
  readonly #saveDelay: number;
  readonly #display: (value: unknown) => string;
  readonly #onState: (state: TextFieldState) => void;
  #state: TextFieldState = { value: "", status: "loading", error: undefined, readOnly: true };
  #element: TextFieldElement | null = null;
  #queue: Keystroke[] = [];
  #writing: Promise<void> = Promise.resolve();
  #writes = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  // Bumped by every keystroke and write, so a read started before one of them is not taken in.
  #epoch = 0;
  #reads = 0;
  #subscription: Subscription | null = null;
  #disposed = false;

  constructor(
    collection: TextFieldCollection,
    id: string,
    path: string,
    onState: (state: TextFieldState) => void,
    options: TextFieldOptions = {},
  ) {
    this.#collection = collection;
    this.#id = id;
    this.#path = path;
    this.#onState = onState;
    this.#saveDelay = options.saveDelay ?? 300;
    this.#display = options.display ?? (() => "");
    this.#subscription = live(() => collection.get(id)).subscribe({
      next: () => this.refresh(),
      error: (error: unknown) => this.#set({ status: "unavailable", error: asError(error), readOnly: true }),
    });
  }

  /** The latest state. */
  get state(): TextFieldState {
    return this.#state;
  }

  /** The element whose value and selection this field keeps (null when it goes away). */
  attach(element: TextFieldElement | null): void {
    this.#element = element;
  }

  /** The element now shows `value`, typed by its user: queues the edit and schedules the save. */
  input(value: string): void {
    if (this.#disposed || this.#state.readOnly || value === this.#state.value) return;
    const caret = this.#element?.value === value ? (this.#element.selectionEnd ?? undefined) : undefined;
    this.#queue.push({ seen: this.#state.value, splice: diffSplice(this.#state.value, value, caret) });
    this.#epoch++;
    this.#set({ value, status: this.#writes > 0 ? "saving" : "editing" });
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.flush(), this.#saveDelay);
  }

  /** Saves the queued keystrokes now; resolves once they are written (or the write failed). */
  flush(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#queue.length === 0) return this.#writing;
    this.#writes++;
    if (!this.#disposed) this.#set({ status: "saving" });
    this.#writing = this.#writing.then(() => this.#write());
    return this.#writing;
  }

  /** Reads the record again and shows what changed elsewhere, unless keystrokes are queued or saving. */
  refresh(): void {
    if (this.#disposed || !this.#idle()) return;
    const epoch = this.#epoch;
    const read = ++this.#reads;
    this.#collection.get(this.#id).then(
      (row) => {
        if (this.#disposed || epoch !== this.#epoch || read !== this.#reads || !this.#idle()) return;
        this.#absorb(row);
      },
      (error: unknown) => this.#set({ status: "failed", error: asError(error) }),
    );
  }

  /** Saves what is queued and stops following the record. */
  dispose(): Promise<void> {
    const saved = this.flush();
    this.#disposed = true;
    this.#subscription?.unsubscribe();
    this.#subscription = null;
    this.#element = null;
    return saved;
  }

  #idle(): boolean {
    return this.#queue.length === 0 && this.#writes === 0;
  }

  async #write(): Promise<void> {
    const taken: Keystroke[] = [];
    this.#epoch++;
    try {
      await this.#collection.update(this.#id, (draft) => {
        // Taken when the update runs, not when it was asked for: keystrokes typed while earlier
        // transactions ran go in this one too. Each is placed against the text as it is now, which
        // holds the keystrokes before it and whatever arrived from elsewhere.
        taken.push(...this.#queue.splice(0));
        for (const { seen, splice } of taken) {
          const current = readText(draft, this.#path);
          for (const s of rebaseSplice(splice, seen, current))
            spliceText(draft, this.#path, s.at, s.remove, s.insert);
        }
      });
    } catch (error) {
      // Nothing of this write was saved: the keystrokes go back to the head of the queue, in order.
      this.#queue.unshift(...taken);
      this.#writes--;
      if (!this.#disposed) this.#set({ status: "failed", error: asError(error) });
      return;
    }
    this.#writes--;
    if (this.#disposed || this.#writes > 0) return;
    if (this.#queue.length > 0) this.#set({ status: this.#timer === null ? "saving" : "editing" });
    else {
      this.#set({ status: "saved", error: undefined });
      this.refresh();
    }
  }

  /** Shows the record as read, keeping the selection where it was in the text around it. */
  #absorb(row: object | undefined): void {
    if (row === undefined) {
      const error = new NotFound("This record was deleted, or it has not reached this device yet.");
      this.#set({ status: "unavailable", error, readOnly: true });
      return;
    }
    const raw = readPath(row, this.#path);
    if (raw !== undefined && raw !== null && typeof raw !== "string") {
      const error = new ValidationError(`Field "${this.#path}" holds a ${typeof raw}, not text.`);
      this.#show(this.#display(raw));
      this.#set({ status: "unavailable", error, readOnly: true });
      return;
    }
    this.#show(raw ?? "");
    if (this.#state.status !== "failed") this.#set({ status: "saved", error: undefined, readOnly: false });
    else this.#set({ readOnly: false });
  }

  #show(value: string): void {
    const before = this.#state.value;
    if (value === before) return;
    const el = this.#element;
    if (el && el.value === before) {
      // Written to the element now, not at the next render: a keystroke in between would otherwise be
      // diffed against a value the element did not show.
      const edit = diffSplice(before, value);
      const start = mapPosition(el.selectionStart ?? 0, edit);
      const end = mapPosition(el.selectionEnd ?? 0, edit);
      const direction = el.selectionDirection ?? undefined;
      el.value = value;
      el.setSelectionRange(start, end, direction);
    }
    this.#set({ value });
  }

  #set(change: Partial<TextFieldState>): void {
    this.#state = { ...this.#state, ...change };
    if (!this.#disposed) this.#onState(this.#state);
  }
}

function readPath(row: object, path: string): unknown {
  let value: unknown = row;
  for (const key of path.split(".")) {
    value = value !== null && typeof value === "object" ? Reflect.get(value, key) : undefined;
  }
  return value;
}

function readText(draft: object, path: string): string {
  const value = readPath(draft, path);
  return typeof value === "string" ? value : "";
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
