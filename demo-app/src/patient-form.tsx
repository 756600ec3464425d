import { useState, type FormEvent } from "react";
import type { DemoDatabase } from "./db.ts";

/** Adds a patient. The list updates through its live query, not through this form. */
export function PatientForm({ db }: { db: DemoDatabase }) {
  const [name, setName] = useState("");
  const [ward, setWard] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return;
    try {
      await db.patients.insert({ name: trimmed, ward: ward.trim(), tags: [], notes: "" });
      setName("");
      setError(null);
    } catch (cause) {
      setError(`Could not save: ${String(cause)}`);
    }
  }

  return (
    <form className="card patient-form" onSubmit={submit}>
      <h2>Add a patient</h2>
      <label>
        Name
        <input value={name} onChange={(event) => setName(event.target.value)} required />
      </label>
      <label>
        Ward
        <input value={ward} onChange={(event) => setWard(event.target.value)} placeholder="A" />
      </label>
      <button type="submit">Add patient</button>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </form>
  );
}
