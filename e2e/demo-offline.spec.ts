// A real network cut: the relay process is stopped while two devices keep working, then started again
// on the same port. Nothing may be lost, and the UI must present offline work as kept, not failed.
import { DemoDevice, RELAY_CUT_NOISE, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  appendToNote,
  createClinic,
  editPatient,
  joinWithLink,
  noteArea,
  openPatient,
  patientList,
  pendingCommits,
  readInvitationLink,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

/** Reconnection uses backoff (up to 30 s between attempts), so convergence may take that long. */
const RECONNECT = { timeout: 45_000 };

test("both devices edit the same and different patients while the relay is down, and converge when it is back", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(150_000);
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "East Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "East Clinic");
  for (const name of ["Ada Lovelace", "Grace Hopper", "Alan Turing"]) {
    await addPatient(front.page, { name, ward: "General medicine" });
    await front.page.getByRole("link", { name: "← All patients" }).click();
  }
  await expect(ward.page.getByTestId("patient-count")).toHaveText("3 patients");
  for (const device of [front, ward]) {
    await expect(syncState(device.page)).toHaveText("Online · up to date");
    await expect(pendingCommits(device.page)).toHaveText("All changes on the relay");
  }

  // The cut. Chromium logs each refused reconnection as a console error the page cannot prevent.
  for (const device of [front, ward]) device.allowConsoleErrors(RELAY_CUT_NOISE);
  await relay.stop();
  for (const device of [front, ward]) await expect(syncState(device.page)).toHaveText(/^Offline/);

  // Same patient (Ada) on both: the note on both, different fields on each.
  await openPatient(front.page, "Ada Lovelace");
  await openPatient(ward.page, "Ada Lovelace");
  await appendToNote(front.page, "Front desk: called the family.");
  await appendToNote(ward.page, "Ward: temperature 38.2 at 14:00.");
  await editPatient(front.page, "Ada Lovelace", { phone: "+44 20 7946 0001" });
  await editPatient(ward.page, "Ada Lovelace", { ward: "Cardiology" });
  // Different patients: Grace on the front desk, Alan and a new patient on the ward.
  await openPatient(front.page, "Grace Hopper");
  await editPatient(front.page, "Grace Hopper", { phone: "+44 20 7946 0002" });
  await openPatient(ward.page, "Alan Turing");
  await editPatient(ward.page, "Alan Turing", { name: "Alan M. Turing" });
  await ward.page.getByRole("link", { name: "Shoal Clinic" }).click();
  await addPatient(ward.page, { name: "Mary Seacole", ward: "Surgery" });

  // During the cut: offline, changes counted as kept on this device, the patient's latest change local.
  for (const device of [front, ward]) {
    await expect(syncState(device.page)).toHaveText(/^Offline/);
    await expect(pendingCommits(device.page)).toHaveText(
      /^[1-9]\d* changes? kept on this device, waiting to sync$/,
    );
    await expect(device.page.getByRole("alert")).toHaveCount(0);
  }
  await expect(front.page.getByTestId("durability")).toHaveText("Latest change only on this device");
  await front.screenshot(testInfo, "front-desk-offline");
  await ward.screenshot(testInfo, "ward-tablet-offline");

  // The relay comes back on the same port with its sqlite store.
  await relay.start();
  for (const device of [front, ward]) {
    await expect(syncState(device.page)).toHaveText("Online · up to date", RECONNECT);
    await expect(pendingCommits(device.page)).toHaveText("All changes on the relay", RECONNECT);
  }
  await expect(front.page.getByTestId("durability")).toHaveText("Latest change safe on the relay");

  for (const device of [front, ward]) {
    const page = device.page;
    await page.getByRole("link", { name: "Shoal Clinic" }).click();
    await expect(page.getByTestId("patient-count")).toHaveText("4 patients", RECONNECT);
    for (const name of ["Ada Lovelace", "Grace Hopper", "Alan M. Turing", "Mary Seacole"]) {
      await expect(patientList(page)).toContainText(name);
    }
    await openPatient(page, "Ada Lovelace");
    await expect(noteArea(page)).toHaveValue(/Front desk: called the family\./);
    await expect(noteArea(page)).toHaveValue(/Ward: temperature 38\.2 at 14:00\./);
    await expect(page.getByTestId("phone")).toHaveText("+44 20 7946 0001");
    await expect(page.getByTestId("ward")).toHaveText("Cardiology");
    await openPatient(page, "Grace Hopper");
    await expect(page.getByTestId("phone")).toHaveText("+44 20 7946 0002");
  }
  await front.screenshot(testInfo, "front-desk-after-reconnect");

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});
