// The demo opened the way a second device on the LAN opens it: plain http from an address that is not
// localhost, which is not a secure context, so the page has no WebCrypto. Chromium maps the made-up host
// name to the loopback relay (nothing leaves the machine). The app must still open and keep data on the
// device, and say in words why it does not sync, instead of "Local only" and a TypeError (issue 14 item 7).
import { chromium } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumExecutable } from "../scripts/chromium.mjs";
import { addPatient, createClinic, patientList, syncState } from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("over plain http from a LAN address the demo works on the device and explains why it cannot sync", async ({
  relay,
}) => {
  const browser = await chromium.launch({
    executablePath: chromiumExecutable(),
    args: [...CHROMIUM_ARGS, "--host-resolver-rules=MAP clinic.lan 127.0.0.1"],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const origin = relay.url.replace("127.0.0.1", "clinic.lan");
    await createClinic(page, origin, "Tablet on the LAN", "LAN Clinic");
    expect(await page.evaluate(() => [window.isSecureContext, typeof crypto.subtle])).toEqual([
      false,
      "undefined",
    ]);

    await expect(syncState(page)).toHaveText("Not syncing");
    const alert = page.getByTestId("sync-error");
    await expect(alert).toHaveAttribute("data-code", "InsecureContext");
    await expect(alert).toContainText("secure context");
    await expect(alert).toContainText("https");

    // Still a working app on this device.
    await addPatient(page, { name: "Lan Patient" });
    await page.goto(`${origin}/`);
    await expect(patientList(page)).toContainText("Lan Patient");
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
});
