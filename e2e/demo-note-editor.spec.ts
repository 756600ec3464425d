// The clinical note keeps every keystroke: typing, a pause past the autosave, more typing, with another
// device inserting text at the start of the same note in between (issue 14, item 6).
import type { Page } from "@playwright/test";
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  createClinic,
  joinWithLink,
  noteArea,
  openPatient,
  patientList,
  readInvitationLink,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

const noteState = (page: Page) => page.getByTestId("note-state");
const caret = (page: Page) =>
  noteArea(page).evaluate((el: HTMLTextAreaElement) => [el.selectionStart, el.selectionEnd]);

/** Types at the start of the note on `page`, then leaves the field and waits until it is saved. */
async function insertAtStart(page: Page, text: string): Promise<void> {
  const note = noteArea(page);
  await note.click();
  await note.press("Control+Home");
  await note.pressSequentially(text, { delay: 15 });
  await note.blur();
  await expect(noteState(page)).toHaveText("Saved on this device");
}

test("the note keeps every keystroke and the cursor across the autosave and a concurrent edit from another device", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "East Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "East Clinic");
  await addPatient(front.page, { name: "Ada Lovelace" });
  await expect(patientList(ward.page)).toContainText("Ada Lovelace");
  await openPatient(ward.page, "Ada Lovelace");

  // The typist: "first.", then a pause until the autosave has written it (the field stays focused).
  const note = noteArea(front.page);
  await note.click();
  await front.page.keyboard.type("first.", { delay: 15 });
  await expect(noteState(front.page)).toHaveText("Saved on this device");
  await expect(note).toHaveValue("first.");
  expect(await caret(front.page)).toEqual([6, 6]);
  await expect(noteArea(ward.page)).toHaveValue("first.");

  // Another device writes at the start; the typist's note takes it in while focused, caret kept.
  await insertAtStart(ward.page, "Ward: ");
  await expect(note).toHaveValue("Ward: first.");
  expect(await caret(front.page)).toEqual([12, 12]);

  // The typist goes on where the caret is while the other device inserts at the start again.
  await Promise.all([
    front.page.keyboard.type(" second.", { delay: 25 }),
    insertAtStart(ward.page, "Seen. "),
  ]);
  const expected = "Seen. Ward: first. second.";
  await expect(note).toHaveValue(expected);
  await expect(noteState(front.page)).toHaveText("Saved on this device");
  await expect(noteArea(ward.page)).toHaveValue(expected);
  expect(await caret(front.page)).toEqual([expected.length, expected.length]);
  await front.screenshot(testInfo, "typist-note");

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});
