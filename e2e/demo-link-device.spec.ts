// Issue 13 item 1 in the demo, a real relay and three browser contexts: the admin invites a writer, who
// links a second device of theirs from the Staff page. Every device then lists the writer once, with two
// devices; the second device writes like the first; and when it leaves for good, the others list the
// writer with one device again. Leaving for good with the relay down says the others were not told, and
// an admin removes the stale device by hand.
import type { Page } from "@playwright/test";
import { DemoDevice, expectNoPageErrors, RELAY_CUT_NOISE } from "./support/demo-device.ts";
import {
  addPatient,
  backToList,
  createClinic,
  joinAsDeviceOf,
  joinWithLink,
  openStaff,
  patientList,
  pendingCommits,
  readDeviceLink,
  readInvitationLink,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

const CLINIC = "North Clinic";
const NURSE = "Nurse B";

/** The devices listed for a person in the Staff page's table. */
const devicesOf = (page: Page, person: string) =>
  page.locator(`[data-testid="member-row"][data-name="${person}"]`).getByRole("listitem");

test("a writer links a second device of theirs; it writes as them, then leaves for good", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(120_000);
  const a = await DemoDevice.open(browser, "admin");
  await createClinic(a.page, relay.url, "Dr. Admin", CLINIC);
  await expect(syncState(a.page)).toHaveText("Online · up to date");
  const toB = await readInvitationLink(a.page, "writer");
  const b = await DemoDevice.open(browser, "phone");
  await joinWithLink(b.page, toB, NURSE, CLINIC);

  // The writer (no admin) links a tablet from the Staff page: a link and its QR code.
  const link = await readDeviceLink(b.page);
  await expect(
    b.page.getByRole("img", { name: `QR code linking another device of ${NURSE} to ${CLINIC}` }),
  ).toBeVisible();
  await b.page.getByTestId("device-link").scrollIntoViewIfNeeded();
  await b.screenshot(testInfo, "device-link");

  // The tablet opens it through the invitation route and learns whose device it became.
  const b2 = await DemoDevice.open(browser, "tablet");
  await joinAsDeviceOf(b2.page, link, "Ward tablet", CLINIC, NURSE);
  await expect(b2.page.getByTestId("device-linked")).toContainText("with the role writer");
  await b2.screenshot(testInfo, "device-linked");
  await b2.page.getByRole("button", { name: `Open ${CLINIC}` }).click();
  await expect(b2.page.getByTestId("clinic-name")).toHaveText(CLINIC);

  // Every device lists the writer once, with both devices; each of the writer's marks its own.
  for (const d of [a, b, b2]) {
    await openStaff(d.page);
    await expect(d.page.getByTestId("member-row")).toHaveCount(2);
    await expect(devicesOf(d.page, NURSE)).toHaveCount(2);
  }
  for (const d of [b, b2])
    await expect(devicesOf(d.page, NURSE).filter({ hasText: "this device" })).toHaveCount(1);
  await a.screenshot(testInfo, "staff-two-devices");

  // The tablet writes as the writer; the admin and the phone see it.
  await backToList(b2.page);
  await addPatient(b2.page, { name: "Tabitha Tablet" });
  await expect(pendingCommits(b2.page)).toHaveText("All changes on the relay");
  for (const d of [a, b]) {
    await backToList(d.page);
    await expect(patientList(d.page)).toContainText("Tabitha Tablet");
  }

  // The tablet leaves for good, after a confirmation saying it can never come back.
  await b2.page.getByRole("button", { name: "Leave clinic" }).click();
  await b2.page
    .getByRole("button", { name: "Leave for good (remove this device from the staff list)" })
    .click();
  const confirm = b2.page.getByRole("dialog", { name: `Leave ${CLINIC} for good?` });
  await expect(confirm).toContainText(`This device can never rejoin ${CLINIC}`);
  await expect(confirm).toContainText(`${NURSE} stays on the staff list with their other devices.`);
  await b2.screenshot(testInfo, "leave-for-good-confirm");
  await confirm.getByRole("button", { name: "Yes, leave for good" }).click();
  const outcome = b2.page.getByTestId("leave-outcome");
  await expect(outcome).toHaveAttribute("data-announced", "true");
  await expect(outcome).toContainText("The others were told");
  await expect(b2.page.getByRole("button", { name: "Create clinic" })).toBeVisible();
  await b2.screenshot(testInfo, "left-for-good");

  // The others list the writer with the phone alone; the writer stays a member.
  for (const d of [a, b]) {
    await openStaff(d.page);
    await expect(d.page.getByTestId("member-row")).toHaveCount(2);
    await expect(devicesOf(d.page, NURSE)).toHaveCount(1);
  }
  await a.screenshot(testInfo, "staff-one-device-left");

  expectNoPageErrors(a, b, b2);
  await Promise.all([a.close(), b.close(), b2.close()]);
});

test("a device that leaves for good without the relay says the others were not told; an admin removes it", async ({
  browser,
  relay,
}, testInfo) => {
  const a = await DemoDevice.open(browser, "desk");
  await createClinic(a.page, relay.url, "Dr. Admin", CLINIC);
  await expect(syncState(a.page)).toHaveText("Online · up to date");
  // A clinic's staff list starts with its first invitation; a device link needs one.
  await readInvitationLink(a.page, "reader");
  const link = await readDeviceLink(a.page);
  const a2 = await DemoDevice.open(browser, "laptop");
  await joinAsDeviceOf(a2.page, link, "Laptop", CLINIC, "Dr. Admin");
  await a2.page.getByRole("button", { name: `Open ${CLINIC}` }).click();
  await openStaff(a.page);
  await expect(devicesOf(a.page, "Dr. Admin")).toHaveCount(2);

  // With the relay gone, the laptop's own removal never leaves it: it is deleted with the clinic.
  for (const d of [a, a2]) d.allowConsoleErrors(RELAY_CUT_NOISE);
  await relay.stop();
  await a2.page.getByRole("button", { name: "Leave clinic" }).click();
  await a2.page
    .getByRole("button", { name: "Leave for good (remove this device from the staff list)" })
    .click();
  await a2.page.getByRole("button", { name: "Yes, leave for good" }).click();
  const outcome = a2.page.getByTestId("leave-outcome");
  await expect(outcome).toHaveAttribute("data-announced", "false");
  await expect(outcome).toContainText(
    "could not reach the relay: the others still list this device until an admin removes it",
  );
  await a2.screenshot(testInfo, "left-for-good-unannounced");

  // The desk still lists the laptop, and removes it as a lost device.
  await expect(devicesOf(a.page, "Dr. Admin")).toHaveCount(2);
  await a.page.getByRole("button", { name: "Remove device" }).click();
  await a.page.getByRole("button", { name: "Yes, remove device 2 of Dr. Admin" }).click();
  await expect(devicesOf(a.page, "Dr. Admin")).toHaveCount(1);

  expectNoPageErrors(a, a2);
  await Promise.all([a.close(), a2.close()]);
});
