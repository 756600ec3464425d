// Bounded counters in the demo (issue 17 items 1 and 5): the Stock page of a clinic. Online, a device
// holding no doses asks for some and the other device hands them over; with the relay down, each device
// administers only the doses it holds (more is refused at once), and once the relay is back both show
// the stock at 0, never below, and the most-administered list counts every dose.
import type { Page } from "@playwright/test";
import { DemoDevice, RELAY_CUT_NOISE, expectNoPageErrors } from "./support/demo-device.ts";
import {
  createClinic,
  joinWithLink,
  pendingCommits,
  readInvitationLink,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

/** Reconnection uses backoff (up to 30 s between attempts), so convergence may take that long. */
const RECONNECT = { timeout: 45_000 };

async function openStock(page: Page): Promise<void> {
  await page.getByRole("link", { name: "Stock", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Vaccine stock" })).toBeVisible();
}

const line = (page: Page, vaccine: string) => page.getByRole("row", { name: vaccine });

/** Types an amount for a vaccine and presses one of its buttons. */
async function press(page: Page, vaccine: string, button: string, amount: number): Promise<void> {
  await line(page, vaccine)
    .getByRole("textbox", { name: `Doses of ${vaccine}` })
    .fill(String(amount));
  await line(page, vaccine).getByRole("button", { name: button, exact: true }).click();
}

test("two devices share a vaccine's stock: offline, each administers only what it holds", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(180_000);
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "Stock Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "Stock Clinic");
  for (const device of [front, ward]) await openStock(device.page);

  await front.page.getByRole("textbox", { name: "Vaccine" }).fill("MMR");
  await front.page.getByRole("textbox", { name: "Doses", exact: true }).fill("10");
  await front.page.getByRole("button", { name: "Add vaccine" }).click();
  await expect(line(front.page, "MMR").getByTestId("held-here")).toHaveText("10");
  await expect(line(ward.page, "MMR").getByTestId("in-stock")).toHaveText("10", RECONNECT);
  await expect(line(ward.page, "MMR").getByTestId("held-here")).toHaveText("0");

  // Online: the ward tablet asks for 4 doses, and the front desk hands them over by itself.
  await press(ward.page, "MMR", "Ask for", 4);
  await expect(line(ward.page, "MMR").getByTestId("held-here")).toHaveText("4", RECONNECT);
  await expect(line(front.page, "MMR").getByTestId("held-here")).toHaveText("6", RECONNECT);

  // The relay goes down: both devices are offline.
  for (const device of [front, ward]) device.allowConsoleErrors(RELAY_CUT_NOISE);
  await relay.stop();
  for (const device of [front, ward]) await expect(syncState(device.page)).toHaveText(/^Offline/);
  await press(front.page, "MMR", "Administer", 7);
  await expect(front.page.getByTestId("stock-message")).toHaveText(/^Refused: this device holds 6 of the 10/);
  await press(front.page, "MMR", "Administer", 6);
  await expect(front.page.getByTestId("stock-message")).toHaveText("Administered 6 of MMR.");
  await press(ward.page, "MMR", "Administer", 5);
  await expect(ward.page.getByTestId("stock-message")).toHaveText(/^Refused: this device holds 4 of the 10/);
  await press(ward.page, "MMR", "Administer", 4);
  await expect(ward.page.getByTestId("stock-message")).toHaveText("Administered 4 of MMR.");
  await expect(line(front.page, "MMR").getByTestId("in-stock")).toHaveText("4");
  await expect(line(ward.page, "MMR").getByTestId("in-stock")).toHaveText("6");
  await front.screenshot(testInfo, "front-desk-offline");

  // Back online: both devices show the stock at 0 and every dose in the most-administered list.
  await relay.start();
  for (const device of [front, ward]) {
    await expect(syncState(device.page)).toHaveText("Online · up to date", RECONNECT);
    await expect(pendingCommits(device.page)).toHaveText("All changes on the relay", RECONNECT);
    await expect(line(device.page, "MMR").getByTestId("in-stock")).toHaveText("0", RECONNECT);
    await expect(device.page.getByTestId("top-vaccine")).toHaveText(["MMR: 10"], RECONNECT);
  }
  await ward.screenshot(testInfo, "ward-tablet-merged");

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});
