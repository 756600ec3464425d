import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, spliceText, type Database } from "../index.ts";
import { TextFieldSync, type TextFieldElement, type TextFieldState } from "./text-field-sync.ts";

let n = 0;
const fresh = () => `db-text-field-${Date.now()}-${n++}`;
const collections = { notes: { indexes: "id", text: ["body"] } };
type NoteRows = { notes: { body: unknown } };
type Notes = Database<NoteRows>;

/** A textarea as far as the field sees it: a value, a selection, and typing at the caret. */
class FakeTextarea implements TextFieldElement {
  value = "";
  selectionStart = 0;
  selectionEnd = 0;
  selectionDirection: "forward" | "backward" | "none" = "none";
  constructor(readonly field: () => TextFieldSync) {}
  setSelectionRange(start: number, end: number): void {
    this.selectionStart = start;
    this.selectionEnd = end;
  }
  /** Types `text` one character at a time at the caret, replacing the selection, as a keyboard does. */
  type(text: string): void {
    for (const ch of text) {
      this.value = this.value.slice(0, this.selectionStart) + ch + this.value.slice(this.selectionEnd);
      this.selectionStart = this.selectionEnd = this.selectionStart + ch.length;
      this.field().input(this.value);
    }
  }
  backspace(): void {
    this.value = this.value.slice(0, this.selectionStart - 1) + this.value.slice(this.selectionEnd);
    this.selectionStart = this.selectionEnd = this.selectionStart - 1;
    this.field().input(this.value);
  }
}

/** A field over one record with a fake textarea, and a way to wait for a state. */
function bind(db: Notes, id: string, options: { display?: (v: unknown) => string } = {}) {
  const waiting: { test: (s: TextFieldState) => boolean; resolve: () => void }[] = [];
  const onState = (state: TextFieldState) => {
    for (const w of waiting.splice(0)) {
      if (w.test(state)) w.resolve();
      else waiting.push(w);
    }
  };
  // A save delay no test waits for: saves happen on flush() only, so each test decides when.
  const field = new TextFieldSync(db.notes, id, "body", onState, { saveDelay: 3_600_000, ...options });
  const area = new FakeTextarea(() => field);
  field.attach(area);
  const until = (test: (s: TextFieldState) => boolean) =>
    test(field.state) ? Promise.resolve() : new Promise<void>((resolve) => waiting.push({ test, resolve }));
  opened.push(field);
  return { field, area, until };
}

const opened: TextFieldSync[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((f) => f.dispose()));
});

const body = async (db: Notes, id: string) => (await db.notes.get(id))?.body;

describe("TextFieldSync", () => {
  it("shows the field, then writes typing (a selection replaced and a backspace included) in order", async () => {
    const db = await openDatabase<NoteRows>({ name: fresh(), collections });
    const id = await db.notes.insert({ body: "first." });
    const { field, area, until } = bind(db, id);
    await until((s) => s.status === "saved");
    expect([area.value, field.state.readOnly]).toEqual(["first.", false]);

    area.setSelectionRange(0, 5); // "first" selected, then typed over
    area.type("Last");
    area.setSelectionRange(area.value.length, area.value.length);
    area.type(" aa");
    area.setSelectionRange(area.value.length - 1, area.value.length - 1);
    area.type("a"); // between the two a's: ambiguous as text, placed by the caret
    area.backspace();
    expect(field.state.status).toBe("editing");
    const first = field.flush();
    area.setSelectionRange(area.value.length, area.value.length);
    area.type("!"); // typed while the first save runs
    await Promise.all([first, field.flush()]);
    expect(field.state.status).toBe("saved");
    expect(area.value).toBe("Last. aa!");
    expect(await body(db, id)).toBe("Last. aa!");
    await db.close();
  });

  it("places keystrokes typed against a stale text where they were typed, never over a remote edit", async () => {
    const db = await openDatabase<NoteRows>({ name: fresh(), collections });
    const id = await db.notes.insert({ body: "first." });
    const { field, area, until } = bind(db, id);
    await until((s) => s.status === "saved");
    area.setSelectionRange(6, 6);
    area.type(" sec");
    // Another device inserts at the start; the field does not show it while keystrokes are queued.
    await db.notes.update(id, (d) => spliceText(d, "body", 0, 0, "Ward: "));
    area.type("ond.");
    expect(area.value).toBe("first. second.");
    await field.flush();
    expect(await body(db, id)).toBe("Ward: first. second.");
    // Once saved, the field takes the remote edit in, and the caret stays after "second.".
    await until((s) => s.value === "Ward: first. second.");
    expect([area.value, area.selectionStart, area.selectionEnd]).toEqual(["Ward: first. second.", 20, 20]);
    await db.close();
  });

  it("takes in remote edits while idle, keeping the selection on the same text", async () => {
    const db = await openDatabase<NoteRows>({ name: fresh(), collections });
    const id = await db.notes.insert({ body: "The quick fox." });
    const { area, until } = bind(db, id);
    await until((s) => s.status === "saved");
    area.setSelectionRange(4, 9); // "quick"
    await db.notes.update(id, (d) => spliceText(d, "body", 0, 0, "See: "));
    await until((s) => s.value === "See: The quick fox.");
    expect([area.value.slice(area.selectionStart, area.selectionEnd), area.selectionStart]).toEqual([
      "quick",
      9,
    ]);
    // An edit after the selection leaves it where it is.
    await db.notes.update(id, (d) => spliceText(d, "body", 18, 1, "!"));
    await until((s) => s.value === "See: The quick fox!");
    expect([area.selectionStart, area.selectionEnd]).toEqual([9, 14]);
    await db.close();
  });

  it("keeps the typed text when a save fails, and says why", async () => {
    const db = await openDatabase<NoteRows>({ name: fresh(), collections });
    const id = await db.notes.insert({ body: "" });
    const { field, area, until } = bind(db, id);
    await until((s) => s.status === "saved");
    area.type("unsaved");
    await db.notes.delete(id);
    await field.flush();
    expect(field.state.status).toBe("failed");
    expect(field.state.error).toMatchObject({ code: "NotFound" });
    expect([area.value, field.state.value]).toEqual(["unsaved", "unsaved"]);
    await db.close();
  });

  it("shows a field holding something else than text read-only, and never writes it", async () => {
    const db = await openDatabase<NoteRows>({ name: fresh(), collections });
    const id = await db.notes.insert({ body: { not: "text" } });
    const { field, area, until } = bind(db, id, { display: (v) => JSON.stringify(v) });
    await until((s) => s.status === "unavailable");
    expect([area.value, field.state.readOnly, field.state.error?.name]).toEqual([
      '{"not":"text"}',
      true,
      "ValidationError",
    ]);
    area.type("x");
    await field.flush();
    expect(await body(db, id)).toEqual({ not: "text" });
    await db.close();
  });

  it("says a missing record is unavailable", async () => {
    const db = await openDatabase<NoteRows>({ name: fresh(), collections });
    const { field, until } = bind(db, "0190a2c4-0000-7000-8000-000000000000");
    await until((s) => s.status === "unavailable");
    expect([field.state.readOnly, field.state.error?.name]).toEqual([true, "NotFound"]);
    await db.close();
  });
});
