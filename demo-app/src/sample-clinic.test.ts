import { describe, expect, it } from "vitest";
import { SAMPLE_PATIENTS, SMALL_SAMPLE_PATIENTS, VISITS_PER_PATIENT, sampleClinic } from "./sample-clinic.ts";

describe("the sample clinic", () => {
  it("has 2,000 patients with their visits by default, and the small one is its first 500", () => {
    const full = [...sampleClinic("clinic-1")];
    const small = [...sampleClinic("clinic-1", SMALL_SAMPLE_PATIENTS)];
    expect(full).toHaveLength(SAMPLE_PATIENTS);
    expect(small).toHaveLength(500);
    expect(small).toEqual(full.slice(0, 500));
    expect(small.every((p) => p.visits.length === VISITS_PER_PATIENT)).toBe(true);
    expect(small[0]!.patient.mrn).toBe("MRN-100000");
  });
});
