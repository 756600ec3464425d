import type { Space } from "@shoal/client";
import type { ClinicDatabase } from "./db.ts";

/** What a part of the app about one clinic needs: the database, the clinic, and this device's name. */
export interface ClinicPageProps {
  db: ClinicDatabase;
  clinic: Space;
  /** This device's display name (the creator's name when a first invitation starts the staff list). */
  deviceName: string;
}
