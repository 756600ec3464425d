/** The wards of the demo clinic, offered in forms and in the list's filter. */
export const WARDS = [
  "Cardiology",
  "General medicine",
  "Maternity",
  "Oncology",
  "Paediatrics",
  "Surgery",
] as const;

/** Common allergies, offered as suggestions and in the list's filter; any other text is allowed too. */
export const COMMON_ALLERGIES = [
  "penicillin",
  "latex",
  "peanuts",
  "shellfish",
  "aspirin",
  "ibuprofen",
  "sulfa drugs",
  "eggs",
  "iodine contrast",
  "bee stings",
] as const;

/** Reasons for a visit, offered as suggestions. */
export const VISIT_REASONS = [
  "Check-up",
  "Follow-up",
  "Blood test",
  "Vaccination",
  "Wound care",
  "Medication review",
  "Chest pain",
  "Fever",
  "Prenatal visit",
  "Post-operative review",
] as const;
