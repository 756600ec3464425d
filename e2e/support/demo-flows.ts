import { expect, type Page } from "@playwright/test";

/**
 * What people do in the clinic demo, as steps the specs share. Every step ends by waiting for the UI
 * state it produces, never for a fixed time.
 */

/**
 * The demo's reconnect setting (`?retry=1`, README "The demo offline"), which a device remembers once
 * it has opened the app with it. Every device of the demo specs opens it so on its first visit: after a
 * spec restarts the relay, the devices find it again within a second by their own backoff timer,
 * instead of waiting out the default ceiling of 30 s.
 */
export const RETRY_QUERY = "?retry=1";

/**
 * Opens `url` (the app's root, or an invitation link) in `page`, with the demo's reconnect setting in
 * the query when this is the page's first visit. Later visits keep their address as given: the device
 * remembers the setting, and a link opened from the app itself stays a same-document navigation.
 */
export async function visit(page: Page, url: string): Promise<void> {
  if (page.url() !== "about:blank") {
    await page.goto(url);
    return;
  }
  const u = new URL(url);
  u.search = RETRY_QUERY;
  await page.goto(u.href);
}

/** The status bar's connection text. */
export const syncState = (page: Page) => page.getByTestId("sync-state");
/** The status bar's "commits waiting" text. */
export const pendingCommits = (page: Page) => page.getByTestId("pending-commits");
/** The list of patients on the list page. */
export const patientList = (page: Page) => page.getByRole("list", { name: "Patients" });
/** The collaborative note on a patient's page. */
export const noteArea = (page: Page) => page.getByRole("textbox", { name: "Clinical note" });

/** First run on a new device: names it and creates a clinic. Ends on the (empty) patient list. */
export async function createClinic(
  page: Page,
  origin: string,
  deviceName: string,
  clinicName: string,
): Promise<void> {
  await visit(page, `${origin}/`);
  await page.getByLabel("Device name").fill(deviceName);
  await page.getByLabel("Clinic name").fill(clinicName);
  await page.getByRole("button", { name: "Create clinic" }).click();
  await expect(page.getByTestId("clinic-name")).toHaveText(clinicName);
  await expect(page.getByRole("heading", { name: "Patients" })).toBeVisible();
}

/**
 * Makes a single-use member invitation on the Staff page (a `role`, the default expiry) and returns the
 * link it shows, once the invitation has reached the relay (a device can only redeem it then); ends back
 * on the patient list. The relay must be running.
 */
export async function readInvitationLink(
  page: Page,
  role: "admin" | "writer" | "reader" = "writer",
): Promise<string> {
  await openStaff(page);
  const field = page.getByTestId("invite-link");
  const before = (await field.count()) > 0 ? await field.inputValue() : null;
  await page.getByRole("combobox", { name: "Role", exact: true }).selectOption(role);
  await page.getByRole("button", { name: "Create invitation" }).click();
  await expect(field).toHaveValue(/#invite=/);
  if (before !== null) await expect(field).not.toHaveValue(before);
  const link = await field.inputValue();
  await expect(pendingCommits(page)).toHaveText("All changes on the relay");
  await page.getByRole("link", { name: "Shoal Clinic" }).click();
  return link;
}

/** First run through an invitation link: opens it, names the device, joins. */
export async function joinWithLink(
  page: Page,
  link: string,
  deviceName: string,
  clinicName: string,
): Promise<void> {
  await submitJoin(page, link, deviceName, clinicName);
  await expect(page.getByTestId("clinic-name")).toHaveText(clinicName);
}

/**
 * Opens on the Staff page a link for another device of the person using this one ("Link another device
 * of mine") and returns it once it has reached the relay. Ends on the Staff page, the link showing.
 */
export async function readDeviceLink(page: Page): Promise<string> {
  await openStaff(page);
  await page.getByRole("button", { name: "Link another device of mine" }).click();
  const field = page.getByTestId("device-link");
  await expect(field).toHaveValue(/#invite=/);
  await expect(pendingCommits(page)).toHaveText("All changes on the relay");
  return field.inputValue();
}

/**
 * First run through a device link (see `readDeviceLink`): opens it, names the device, joins. Ends on
 * the page saying whose device this became, before the clinic opens.
 */
export async function joinAsDeviceOf(
  page: Page,
  link: string,
  deviceName: string,
  clinicName: string,
  person: string,
): Promise<void> {
  await submitJoin(page, link, deviceName, clinicName);
  await expect(page.getByTestId("device-linked")).toContainText(
    `This device is now another device of ${person}`,
  );
}

async function submitJoin(page: Page, link: string, deviceName: string, clinicName: string): Promise<void> {
  await visit(page, link);
  await expect(page.getByRole("heading", { name: `Join ${clinicName}` })).toBeVisible();
  await page.getByLabel("Device name").fill(deviceName);
  await page.getByRole("button", { name: "Join clinic" }).click();
}

/** From anywhere in the app: back to the patient list. */
export async function backToList(page: Page): Promise<void> {
  await page.getByRole("link", { name: "Shoal Clinic" }).click();
  await expect(page.getByRole("heading", { name: "Patients" })).toBeVisible();
}

/** From anywhere in the clinic: the Staff page. */
export async function openStaff(page: Page): Promise<void> {
  await page.getByRole("link", { name: "Staff", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: /^Staff of / })).toBeVisible();
}

/** Creates a patient from the list page; ends on the new patient's page. */
export async function addPatient(
  page: Page,
  patient: { name: string; ward?: string; allergies?: string },
): Promise<void> {
  await page.getByRole("button", { name: "New patient" }).click();
  const dialog = page.getByRole("dialog", { name: "New patient" });
  await dialog.getByLabel("Full name").fill(patient.name);
  if (patient.ward) await dialog.getByLabel("Ward").selectOption(patient.ward);
  if (patient.allergies) await dialog.getByLabel("Allergies (comma separated)").fill(patient.allergies);
  await dialog.getByRole("button", { name: "Create patient" }).click();
  await expect(page.getByRole("heading", { level: 1, name: patient.name })).toBeVisible();
}

/** From anywhere in the app: the list, then one patient's page by name. */
export async function openPatient(page: Page, name: string): Promise<void> {
  await page.getByRole("link", { name: "Shoal Clinic" }).click();
  await patientList(page)
    .getByRole("link", { name: new RegExp(name) })
    .click();
  await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
}

/** Changes fields through the Edit dialog of the open patient page. */
export async function editPatient(
  page: Page,
  name: string,
  fields: { phone?: string; ward?: string; name?: string },
): Promise<void> {
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: `Edit ${name}` });
  if (fields.name !== undefined) await dialog.getByLabel("Full name").fill(fields.name);
  if (fields.phone !== undefined) await dialog.getByLabel("Phone").fill(fields.phone);
  if (fields.ward !== undefined) await dialog.getByLabel("Ward").selectOption(fields.ward);
  await dialog.getByRole("button", { name: "Save changes" }).click();
  await expect(dialog).toBeHidden();
}

/** Types into the clinical note at its end, then leaves the field so the note is saved. */
export async function appendToNote(page: Page, text: string): Promise<void> {
  const note = noteArea(page);
  await note.click();
  await note.press("End");
  await note.press("Control+End");
  await note.pressSequentially(text, { delay: 15 });
  await note.blur();
  await expect(page.getByTestId("note-state")).toHaveText("Saved on this device");
}
