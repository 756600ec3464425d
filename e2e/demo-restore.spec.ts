// Restore a past version from the audit view: a new change that every device receives.
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  createClinic,
  editPatient,
  joinWithLink,
  openPatient,
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
