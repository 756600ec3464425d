// Restore a past version from the audit view: a new change that every device receives.
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  createClinic,
  editPatient,
  joinWithLink,
  openPatient,
  patientList,
  readInvitationLink,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("a patient edited twice is restored to its first version from the audit view, on both devices", async ({
  browser,
  relay,
}, testInfo) => {
  // Two devices, three edits, a restore and its sync: over a minute on a loaded machine.
  test.setTimeout(120_000);
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "Harbour Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "Harbour Clinic");

  await addPatient(front.page, { name: "Dorothy Hodgkin", ward: "Oncology" });
  await editPatient(front.page, "Dorothy Hodgkin", { ward: "Surgery", phone: "+44 20 7000 0001" });
  await editPatient(front.page, "Dorothy Hodgkin", { ward: "Cardiology", phone: "+44 20 7000 0002" });

  const page = front.page;
  await expect(page.getByTestId("ward")).toHaveText("Cardiology");
  const changes = page.getByRole("list", { name: "Changes" }).getByRole("listitem");
  await expect(changes).toHaveCount(3);
  // The first version: as created.
  await changes.nth(0).getByRole("button").click();
  const past = page.getByLabel("Past version");
  await expect(past.getByTestId("then-ward")).toHaveText("Oncology");
  await past.getByRole("button", { name: "Restore this version" }).click();
  await expect(past.getByRole("status")).toContainText("Restored as a new change");
  await expect(page.getByTestId("ward")).toHaveText("Oncology");
  await expect(page.getByTestId("phone")).not.toContainText("+44");
  // History kept: a fourth entry, marked as a restore.
  await expect(changes).toHaveCount(4);
  await expect(changes.nth(3)).toContainText("Restored");
  await front.screenshot(testInfo, "restore-this-version");

  // The other device receives the restore.
  await openPatient(ward.page, "Dorothy Hodgkin");
  await expect(ward.page.getByTestId("ward")).toHaveText("Oncology");
  const wardChanges = ward.page.getByRole("list", { name: "Changes" }).getByRole("listitem");
  await expect(wardChanges).toHaveCount(4);
  await expect(wardChanges.nth(3)).toContainText("Restored");
  await expect(wardChanges.nth(3)).toContainText("Front desk");

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});

test("an admin restores the clinic to a time: a patient added since is gone on both devices", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(120_000);
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "Harbour Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "Harbour Clinic");
  const page = front.page;

  await addPatient(page, { name: "Barbara McClintock", ward: "Oncology" });
  // A point in time in a later whole second than that patient (the input's precision is a second):
  // wait for the page's clock to reach the next second, a condition, not a fixed pause.
  const added = await page.evaluate(() => Math.floor(Date.now() / 1000));
  await page.waitForFunction((s) => Math.floor(Date.now() / 1000) > s, added);
  const point = await page.evaluate(() => {
    const d = new Date(Math.floor(Date.now() / 1000) * 1000);
    const p = (n: number) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  });
  // The edits after the point must fall in a later second than it.
  const pointSecond = await page.evaluate(() => Math.floor(Date.now() / 1000));
  await page.waitForFunction((s) => Math.floor(Date.now() / 1000) > s, pointSecond);
  await editPatient(page, "Barbara McClintock", { ward: "Surgery" });
  await page.getByRole("link", { name: "Shoal Clinic" }).click();
  await addPatient(page, { name: "Chien-Shiung Wu", ward: "Maternity" });
  await openPatient(ward.page, "Chien-Shiung Wu");

  await openPatient(page, "Barbara McClintock");
  await expect(page.getByTestId("ward")).toHaveText("Surgery");
  const form = page.getByRole("form", { name: "Restore clinic" });
  await form.getByLabel("Restore clinic to…").fill(point);
  page.once("dialog", (d) => void d.accept());
  await form.getByRole("button", { name: "Restore clinic" }).click();
  await expect(form.getByRole("status")).toContainText(/Restored [1-9]\d* record\(s\), deleted 1 /);
  await expect(page.getByTestId("ward")).toHaveText("Oncology");
  await front.screenshot(testInfo, "restore-clinic");

  // The ward tablet (a writer, not an admin) sees the result, and no clinic restore of its own.
  await openPatient(ward.page, "Barbara McClintock");
  await expect(ward.page.getByTestId("ward")).toHaveText("Oncology");
  await expect(ward.page.getByRole("form", { name: "Restore clinic" })).toHaveCount(0);
  await ward.page.getByRole("link", { name: "Shoal Clinic" }).click();
  await expect(patientList(ward.page).getByRole("link", { name: /Chien-Shiung Wu/ })).toHaveCount(0);
  await expect(patientList(ward.page).getByRole("link", { name: /Barbara McClintock/ })).toHaveCount(1);

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});
