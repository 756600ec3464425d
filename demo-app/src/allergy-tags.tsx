import type { RecordId } from "@shoal/client";
import { useId, useState, type FormEvent } from "react";
import { COMMON_ALLERGIES } from "./clinic-data.ts";
import type { ClinicDatabase } from "./db.ts";
import { asTextList } from "./safe-values.ts";

/**
 * Allergies as tags. Adding pushes onto the list and removing splices one entry out, rather than
 * assigning a new array, so two devices adding different allergies at once keep both.
 */
export function AllergyTags({ db, id, tags }: { db: ClinicDatabase; id: RecordId; tags: readonly string[] }) {
  const [input, setInput] = useState("");
  const listId = useId();

  async function add(event: FormEvent) {
    event.preventDefault();
    const tag = input.trim().toLocaleLowerCase();
    if (!tag) return;
    setInput("");
    if (tags.includes(tag)) return;
    await db.patients.update(id, (p) => {
      // Another device may have left something other than a list here: make it one again.
      if (!Array.isArray(p.tags)) p.tags = asTextList(p.tags);
      if (!p.tags.includes(tag)) p.tags.push(tag);
    });
  }

  async function remove(tag: string) {
    await db.patients.update(id, (p) => {
      if (!Array.isArray(p.tags)) p.tags = asTextList(p.tags);
      const at = p.tags.indexOf(tag);
      if (at >= 0) p.tags.splice(at, 1);
    });
  }

  return (
    <div className="allergies">
      {tags.length === 0 ? (
        <p className="muted">No known allergies.</p>
      ) : (
        <ul className="chips" aria-label="Allergies">
          {tags.map((t) => (
            <li key={t} className="chip">
              {t}
              <button
                type="button"
                className="chip-remove"
                aria-label={`Remove allergy ${t}`}
                onClick={() => void remove(t)}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <form className="inline-form" onSubmit={(e) => void add(e)}>
        <label>
          <span className="visually-hidden">New allergy</span>
          <input
            list={listId}
            value={input}
            onChange={(e) => setInput(e.target.value)}
            placeholder="Add an allergy"
            aria-label="New allergy"
          />
        </label>
        <datalist id={listId}>
          {COMMON_ALLERGIES.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
        <button type="submit">Add</button>
      </form>
    </div>
  );
}
