// The audit trail: every commit that changed a patient, from every device, and the record as it was.
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

test("the audit view lists both devices' commits and shows a past version with the old values", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "Harbour Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "Harbour Clinic");

  await addPatient(front.page, { name: "Rosalind Franklin", ward: "Oncology" });
  await editPatient(front.page, "Rosalind Franklin", { phone: "+44 20 7000 0001" });
  await openPatient(ward.page, "Rosalind Franklin");
  await expect(ward.page.getByTestId("phone")).toHaveText("+44 20 7000 0001");
  await editPatient(ward.page, "Rosalind Franklin", { ward: "Surgery", phone: "+44 20 7000 0002" });

  const page = front.page;
  await expect(page.getByTestId("ward")).toHaveText("Surgery");
  const changes = page.getByRole("list", { name: "Changes" }).getByRole("listitem");
  await expect(changes).toHaveCount(3);
  await expect(changes.nth(0)).toContainText("Created");
  await expect(changes.nth(0)).toContainText("Front desk (this device)");
  await expect(changes.nth(1)).toContainText("Front desk (this device)");
  await expect(changes.nth(1)).toContainText("phone");
  await expect(changes.nth(2)).toContainText("Ward tablet");
  await expect(changes.nth(2)).toContainText("phone, ward");
  // Every change arrived signed by its device, so none is marked unverified.
  await expect(page.locator(".audit-unverified")).toHaveCount(0);

  // The version right after the front desk's phone edit: the ward tablet's values are not there yet.
  await changes.nth(1).getByRole("button").click();
  const past = page.getByLabel("Past version");
  await expect(past.getByTestId("then-phone")).toHaveText("+44 20 7000 0001");
  await expect(past.getByTestId("then-ward")).toHaveText("Oncology");
  await expect(past.locator('tr[data-field="ward"] td').nth(1)).toHaveText("Surgery");
  // And the version at creation: no phone at all.
  await changes.nth(0).getByRole("button").click();
  await expect(past.getByTestId("then-phone")).toHaveText("—");
  await front.screenshot(testInfo, "audit-past-version");

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});
