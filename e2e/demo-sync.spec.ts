// Two and three devices (browser contexts, each its own IndexedDB) sharing one clinic through the relay.
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  appendToNote,
  createClinic,
  joinWithLink,
  noteArea,
  openPatient,
  patientList,
  readInvitationLink,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("a patient created on one device appears on the other, and both edit its note at once keeping both texts", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "North Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "North Clinic");

  await addPatient(front.page, { name: "Grace Hopper", ward: "Cardiology", allergies: "latex" });
  await expect(patientList(ward.page)).toContainText("Grace Hopper");
  await expect(patientList(ward.page)).toContainText("latex");
  await openPatient(ward.page, "Grace Hopper");

  // Both type into the same note at the same time; each saves when leaving the field.
  const fromFront = "Rash on the left forearm since Monday.";
  const fromWard = "Plan: antihistamine, review in two weeks.";
  await Promise.all([appendToNote(front.page, fromFront), appendToNote(ward.page, fromWard)]);
  for (const device of [front, ward]) {
    await expect(noteArea(device.page)).toHaveValue(new RegExp(escape(fromFront)));
    await expect(noteArea(device.page)).toHaveValue(new RegExp(escape(fromWard)));
  }
  // Both devices hold the same merged text, with nothing duplicated.
  const merged = await noteArea(front.page).inputValue();
  await expect(noteArea(ward.page)).toHaveValue(merged);
  expect(merged.length).toBe(fromFront.length + fromWard.length);
  await front.screenshot(testInfo, "front-desk-patient");
  await ward.screenshot(testInfo, "ward-tablet-patient");

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});

test("a third device joins through the invitation link shown in the UI and receives all patients", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "South Clinic");
  const link = await readInvitationLink(front.page);
  await joinWithLink(ward.page, link, "Ward tablet", "South Clinic");

  const names = ["Ada Lovelace", "Alan Turing", "Katherine Johnson"];
  for (const name of names) {
    await addPatient(front.page, { name });
    await front.page.getByRole("link", { name: "← All patients" }).click();
  }
  await addPatient(ward.page, { name: "Mary Seacole", ward: "Surgery" });
  await ward.page.getByRole("link", { name: "← All patients" }).click();

  // A link is single-use: the laptop gets one of its own, shown (and copied) on the Staff page with its
  // secret in the fragment only.
  const second = await readInvitationLink(front.page);
  expect(second).toMatch(new RegExp(`^${escape(relay.url)}/#invite=`));
  expect(second).not.toBe(link);
  await front.page.getByRole("link", { name: "Staff", exact: true }).click();
  await expect(front.page.getByTestId("invite-qr")).toHaveCount(0);
  await front.screenshot(testInfo, "staff-page");
  await front.page.getByRole("link", { name: "Shoal Clinic" }).click();

  const laptop = await DemoDevice.open(browser, "laptop");
  await joinWithLink(laptop.page, second, "Doctor's laptop", "South Clinic");
  await expect(laptop.page.getByTestId("patient-count")).toHaveText("4 patients");
  for (const name of [...names, "Mary Seacole"]) await expect(patientList(laptop.page)).toContainText(name);
  await laptop.screenshot(testInfo, "third-device-list");

  expectNoPageErrors(front, ward, laptop);
  await Promise.all([front.close(), ward.close(), laptop.close()]);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
