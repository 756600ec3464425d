// A device with a wrong key for a clinic: Chromium hides why the relay refused its WebSocket (close
// 1006, as for a relay that is down), so the transport asks the relay's access probe, and the person
// sees that the key is refused instead of an "Offline" that would never end.
import { randomBytes } from "node:crypto";
import { formatInviteLink } from "../client/src/spaces/invite-link.ts";
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import { createClinic, joinWithLink, syncState } from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("a device joining with a well-formed link carrying a wrong key is told access is denied, not offline", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  await createClinic(front.page, relay.url, "Front desk", "North Clinic");
  // The relay registers the clinic with the front desk's token on its first connection.
  await expect(syncState(front.page)).toHaveText("Online · up to date");

  // The same clinic and a valid checksum, but another key: the link passes every local check and only
  // the relay can tell. (A mistyped key would already fail the checksum, with InvalidInvitation.)
  // The clinic has no staff list (nobody was invited), so it is an open clinic, joined by a key link:
  // its id is the one this device shows.
  const spaceId = await front.page.evaluate(() => localStorage.getItem("shoal-clinic.activeClinic"));
  if (!spaceId) throw new Error("The front desk shows no clinic.");
  const real = { spaceId: spaceId as Parameters<typeof formatInviteLink>[1]["id"] };
  const wrongLink = formatInviteLink(`${relay.url}/`, {
    id: real.spaceId,
    key: new Uint8Array(randomBytes(32)),
    name: "North Clinic",
  });

  const laptop = await DemoDevice.open(browser, "laptop");
  // What Chromium logs by itself for the refused upgrade and the probe's 403, for this clinic only:
  // anything else (another space, another status, an app error) still fails the test.
  const clinicPath = `127\\.0\\.0\\.1:\\d+/sync/${real.spaceId}`;
  laptop.allowConsoleErrors([
    new RegExp(`^WebSocket connection to 'ws://${clinicPath}' failed: .*Unexpected response code: 403 `),
    new RegExp(
      `^Failed to load resource: the server responded with a status of 403 \\(Forbidden\\) \\(http://${clinicPath}/access\\)$`,
    ),
  ]);
  await joinWithLink(laptop.page, wrongLink, "Doctor's laptop", "North Clinic");

  await expect(syncState(laptop.page)).toHaveText("Refused by the relay");
  const alert = laptop.page.getByTestId("sync-error");
  await expect(alert).toHaveText(
    "Access denied: this device's key for North Clinic is not accepted by the relay, so nothing syncs. " +
      "Ask a colleague in the clinic for a new invitation link.",
  );
  await expect(alert).toHaveAttribute("role", "alert");
  await expect(alert).toHaveAttribute("data-code", "AccessDenied");
  await expect(laptop.page.getByText("Relay: refused")).toBeVisible();
  await laptop.screenshot(testInfo, "laptop-access-denied");

  // The answer came from the probe (a browser cannot read the upgrade's 403), and it registered or
  // changed nothing: the front desk is still up to date and shows no error.
  const metrics = await (await fetch(`${relay.url}/metrics`)).text();
  expect(metrics).toMatch(/shoal_access_probes_total\{status="403"\} [1-9]/);
  await expect(syncState(front.page)).toHaveText("Online · up to date");
  await expect(front.page.getByTestId("sync-error")).toHaveCount(0);

  expectNoPageErrors(front, laptop);
  await Promise.all([front.close(), laptop.close()]);
});
