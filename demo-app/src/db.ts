import { openDatabase } from "@shoal/client";

/** A patient as the demo stores it; `notes` is collaborative text, the other strings plain values. */
export interface Patient {
  name: string;
  ward: string;
  tags: string[];
  notes: string;
}

/** The demo's schema: patients searchable by name and ward, with a collaborative free-text note. */
export function openDemoDatabase() {
  return openDatabase<{ patients: Patient }>({
    name: "shoal-demo",
    collections: {
      patients: { indexes: "id, name, ward, *tags", text: ["notes"] },
    },
  });
}

export type DemoDatabase = Awaited<ReturnType<typeof openDemoDatabase>>;
