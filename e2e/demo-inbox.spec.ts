// The conflict inbox (issue 17 item 2): two devices enter different doses for one patient while the
// relay is down; once it is back, both show the two doses in the patient's Inbox, and keeping one on
// one device clears the Inbox on both.
import type { Page } from "@playwright/test";
import { DemoDevice, RELAY_CUT_NOISE, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  createClinic,
  joinWithLink,
  openPatient,
  pendingCommits,
  readInvitationLink,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

/** Reconnection uses backoff (up to 30 s between attempts), so convergence may take that long. */
const RECONNECT = { timeout: 45_000 };

async function setDose(page: Page, dose: string): Promise<void> {
  await page.getByRole("textbox", { name: "New dose" }).fill(dose);
  await page.getByRole("button", { name: "Set dose" }).click();
  await expect(page.getByTestId("dose")).toHaveText(dose);
}

const inbox = (page: Page) => page.getByRole("region", { name: "Inbox" });

test("doses entered on two offline devices show in both inboxes, and keeping one clears both", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(180_000);
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "Dose Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "Dose Clinic");
  await addPatient(front.page, { name: "Ada Lovelace" });
  await expect(ward.page.getByTestId("patient-count")).toHaveText("1 patient");
  await openPatient(ward.page, "Ada Lovelace");
  await expect(inbox(front.page)).toHaveCount(0);

  for (const device of [front, ward]) device.allowConsoleErrors(RELAY_CUT_NOISE);
  await relay.stop();
  for (const device of [front, ward]) await expect(syncState(device.page)).toHaveText(/^Offline/);
  await setDose(front.page, "10 mg");
  await setDose(ward.page, "20 mg");
  // Each device alone sees no conflict: it has not seen the other's dose.
  for (const device of [front, ward]) await expect(inbox(device.page)).toHaveCount(0);

  await relay.start();
  for (const device of [front, ward]) {
    await expect(syncState(device.page)).toHaveText("Online · up to date", RECONNECT);
    await expect(pendingCommits(device.page)).toHaveText("All changes on the relay", RECONNECT);
    const values = inbox(device.page).getByTestId("inbox-value");
    await expect(values).toHaveCount(2, RECONNECT);
    await expect(values.filter({ hasText: "10 mg" })).toContainText("Front desk");
    await expect(values.filter({ hasText: "20 mg" })).toContainText("Ward tablet");
  }
  // Both show the same winner meanwhile.
  const shown = await front.page.getByTestId("dose").textContent();
  await expect(ward.page.getByTestId("dose")).toHaveText(shown ?? "");
  await front.screenshot(testInfo, "front-desk-inbox");

  await ward.page.getByRole("button", { name: "Keep 10 mg" }).click();
  for (const device of [front, ward]) {
    await expect(inbox(device.page)).toHaveCount(0, RECONNECT);
    await expect(device.page.getByTestId("dose")).toHaveText("10 mg");
  }
  await ward.screenshot(testInfo, "ward-tablet-resolved");

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});
