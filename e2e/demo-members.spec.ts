// Issue 13 in the demo, three devices and a real relay: the admin invites a writer and a reader with
// single-use links, the reader's write is refused with NotPermitted, the writer is removed while offline
// and keeps writing, and when it returns its later changes reach nobody, the relay refuses it, and
// nothing written after the removal is in its IndexedDB. A fourth device finds the writer's link used.
import { DemoDevice, expectNoPageErrors, RELAY_CUT_NOISE } from "./support/demo-device.ts";
import {
  addPatient,
  backToList,
  createClinic,
  joinWithLink,
  openStaff,
  patientList,
  pendingCommits,
  readInvitationLink,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";
import { readAllIndexedDb } from "./support/read-all-indexeddb.ts";

const CLINIC = "North Clinic";

/**
 * Chromium's own console errors for a refused upgrade and the access probe's 403, for any clinic; and
 * for the refused appeal of a removed device that has not yet learned it was removed (its own log
 * still keeps it, so it asks the relay once, PROTOCOL.md 1, "Appeal").
 */
const REFUSAL_NOISE = [
  /^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+' failed: .*Unexpected response code: 403 /,
  /^Failed to load resource: the server responded with a status of 403 \(Forbidden\) \(http:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+\/(access|appeal)\)$/,
];
/** The access probe failing while the writer's browser context is offline (`context.setOffline`). */
const OFFLINE_NOISE =
  /^Failed to load resource: net::ERR_INTERNET_DISCONNECTED \(http:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+\/access\)$/;
/** Chromium's console error for a refused invitation redemption (`POST /sync/<space>/invitation`). */
const REDEMPTION_NOISE =
  /^Failed to load resource: the server responded with a status of 403 \(Forbidden\) \(http:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+\/invitation\)$/;


test("an admin invites a writer and a reader; the reader is refused; a writer removed while offline is locked out", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(180_000);
  const a = await DemoDevice.open(browser, "admin");
  await createClinic(a.page, relay.url, "Dr. Admin", CLINIC);
  await expect(syncState(a.page)).toHaveText("Online · up to date");
  const toB = await readInvitationLink(a.page, "writer");
  const toC = await readInvitationLink(a.page, "reader");
  expect(toB).not.toBe(toC);

  const b = await DemoDevice.open(browser, "writer");
  await joinWithLink(b.page, toB, "Nurse B", CLINIC);
  const c = await DemoDevice.open(browser, "reader");
  await joinWithLink(c.page, toC, "Reader C", CLINIC);

  // All three converge.
  await addPatient(a.page, { name: "Ada Admitted" });
  await backToList(a.page);
  await addPatient(b.page, { name: "Bea Before" });
  await backToList(b.page);
  for (const d of [a, b, c]) {
    await expect(patientList(d.page)).toContainText("Ada Admitted");
    await expect(patientList(d.page)).toContainText("Bea Before");
  }
  await openStaff(a.page);
  const rows = a.page.getByTestId("member-row");
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(0)).toContainText("Dr. Admin (you)");
  await expect(rows.nth(0)).toContainText("this device");
  await expect(a.page.getByLabel("Role of Nurse B")).toHaveValue("writer");
  await expect(a.page.getByLabel("Role of Reader C")).toHaveValue("reader");
  await expect(a.page.getByText("No invitation is waiting to be used.")).toBeVisible();
  await a.screenshot(testInfo, "staff-three-members");
  // The admin can export a recovery key; it shows as an open admin invitation until used or revoked.
  await a.page.getByRole("button", { name: "Create a recovery key" }).click();
  await expect(a.page.getByTestId("recovery-key")).toHaveValue(/#recover=[0-9a-f]{32}\./);

  // The reader sees the clinic read-only, and a write is refused with the typed error, in words.
  await expect(c.page.getByTestId("access-banner")).toHaveAttribute("data-reason", "reader");
  await c.page.getByRole("button", { name: "New patient" }).click();
  const dialog = c.page.getByRole("dialog", { name: "New patient" });
  await dialog.getByLabel("Full name").fill("Eve Reader");
  await dialog.getByRole("button", { name: "Create patient" }).click();
  const refusal = dialog.getByRole("alert");
  await expect(refusal).toHaveAttribute("data-code", "NotPermitted");
  await expect(refusal).toHaveAttribute("data-reason", "reader");
  await expect(refusal).toContainText("your role there is reader");
  await c.screenshot(testInfo, "reader-refused");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  // The admin makes the reader a writer, so both remaining devices can write canaries later.
  await a.page.getByLabel("Role of Reader C").selectOption("writer");
  await expect(c.page.getByTestId("access-banner")).toHaveCount(0);

  // B goes offline: no new connection gets out, and the relay restart closes the open one.
  for (const d of [a, c]) d.allowConsoleErrors(RELAY_CUT_NOISE);
  b.allowConsoleErrors([...RELAY_CUT_NOISE, OFFLINE_NOISE]);
  await b.context.setOffline(true);
  await relay.stop();
  await relay.start();
  await expect(syncState(b.page)).toHaveText("Offline");
  for (const d of [a, c])
    await expect(syncState(d.page)).toHaveText("Online · up to date", { timeout: 45_000 });

  // A removes B; B, offline, keeps writing.
  await a.page.getByRole("button", { name: "Remove Nurse B" }).click();
  await a.page.getByRole("button", { name: "Yes, remove Nurse B" }).click();
  await expect(rows).toHaveCount(2);
  await expect(pendingCommits(a.page)).toHaveText("All changes on the relay");
  await addPatient(b.page, { name: "Written After Removal" });
  await backToList(b.page);

  // A and C write canaries after the removal.
  await backToList(a.page);
  await addPatient(a.page, { name: "Canary-A-7f3a" });
  await backToList(a.page);
  await addPatient(c.page, { name: "Canary-C-91bd" });
  await backToList(c.page);
  for (const d of [a, c]) {
    await expect(patientList(d.page)).toContainText("Canary-A-7f3a");
    await expect(patientList(d.page)).toContainText("Canary-C-91bd");
    await expect(pendingCommits(d.page)).toHaveText("All changes on the relay");
  }

  // B returns: the relay refuses it as removed, and the app says so.
  b.allowConsoleErrors([...RELAY_CUT_NOISE, OFFLINE_NOISE, ...REFUSAL_NOISE]);
  await b.context.setOffline(false);
  const banner = b.page.getByTestId("access-banner");
  await expect(banner).toHaveText(new RegExp(`^You no longer have access to ${CLINIC}\\.`), {
    timeout: 60_000,
  });
  await expect(banner).toHaveAttribute("data-reason", "removed");
  await expect(b.page.getByTestId("sync-error")).toHaveAttribute("data-reason", "removed");
  await b.screenshot(testInfo, "removed-device");

  // B's change after the removal reached neither A nor C; nothing written after it is in B's IndexedDB.
  for (const d of [a, c]) {
    await expect(patientList(d.page)).toContainText("Bea Before");
    await expect(patientList(d.page)).not.toContainText("Written After Removal");
  }
  await expect(patientList(b.page)).toContainText("Written After Removal");
  const held = await readAllIndexedDb(b.page);
  expect(held).toContain("shoal-clinic/patients");
  expect(held).not.toContain("Canary-A-7f3a");
  expect(held).not.toContain("Canary-C-91bd");

  // A fourth device opens B's link, already used: refused, with a message a person understands.
  const d = await DemoDevice.open(browser, "stranger");
  d.allowConsoleErrors([REDEMPTION_NOISE]);
  await d.page.goto(toB);
  await expect(d.page.getByRole("heading", { name: `Join ${CLINIC}` })).toBeVisible();
  await d.page.getByLabel("Device name").fill("Found tablet");
  await d.page.getByRole("button", { name: "Join clinic" }).click();
  const joinError = d.page.getByTestId("join-error");
  await expect(joinError).toHaveAttribute("data-reason", "invitation-used");
  await expect(joinError).toContainText("already been used");
  await d.screenshot(testInfo, "used-link-refused");

  expectNoPageErrors(a, b, c, d);
  await Promise.all([a.close(), b.close(), c.close(), d.close()]);
});
