import { useLiveQuery } from "@shoal/client/react";
import { useState } from "react";
import type { DemoDatabase } from "./db.ts";
import { PatientForm } from "./patient-form.tsx";
import { PatientList } from "./patient-list.tsx";

/** The demo page: add patients, see them live, narrow the list by the start of a name. */
export function App({ db }: { db: DemoDatabase }) {
  const [search, setSearch] = useState("");
  const patients = useLiveQuery(
    () => (search ? db.patients.where("name").startsWith(search) : db.patients.orderBy("name")).toArray(),
    [db, search],
  );

  return (
    <main className="app">
      <header>
        <h1>Shoal clinic</h1>
        <p className="subtitle">Patient records kept in this browser. They stay here when you go offline.</p>
      </header>
      <PatientForm db={db} />
      <section className="card" aria-labelledby="patients-heading">
        <div className="list-header">
          <h2 id="patients-heading">Patients</h2>
          <input
            type="search"
            placeholder="Name starts with…"
            aria-label="Search patients by name"
            value={search}
            onChange={(event) => setSearch(event.target.value)}
          />
        </div>
        <PatientList patients={patients} />
      </section>
    </main>
  );
}
