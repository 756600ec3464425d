// Leaving a clinic from the demo (issue 14 item 8): its data goes from this device, the first-run screen
// comes back, the other device keeps everything, and joining again with a link brings it all back.
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  createClinic,
  joinWithLink,
  patientList,
  readInvitationLink,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("leaving a clinic removes it and its patients from the device; joining again brings them back", async ({
  browser,
  relay,
}) => {
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "Hill Clinic");
  const link = await readInvitationLink(front.page);
  await joinWithLink(ward.page, link, "Ward tablet", "Hill Clinic");
  await addPatient(front.page, { name: "Mary Seacole" });
  await ward.page.goto(`${relay.url}/`);
  await expect(patientList(ward.page)).toContainText("Mary Seacole");

  await ward.page.getByRole("button", { name: "Leave clinic" }).click();
  const dialog = ward.page.getByRole("dialog", { name: "Leave Hill Clinic?" });
  await expect(dialog).toContainText("removed from this device");
  await dialog.getByRole("button", { name: "Leave and remove data" }).click();
  // No clinic left on this device: the first-run screen.
  await expect(ward.page.getByRole("button", { name: "Create clinic" })).toBeVisible();
  const held = await ward.page.evaluate(async () => {
    const open = indexedDB.open("shoal-clinic");
    const db = await new Promise<IDBDatabase>((ok, ko) => {
      open.onsuccess = () => ok(open.result);
      open.onerror = () => ko(open.error);
    });
    const all = (name: string) =>
      new Promise<unknown[]>((ok, ko) => {
        const r = db.transaction(name).objectStore(name).getAll();
        r.onsuccess = () => ok(r.result);
        r.onerror = () => ko(r.error);
      });
    const out = { patients: (await all("patients")).length, spaces: (await all("_spaces")).length };
    db.close();
    return out;
  });
  expect(held).toEqual({ patients: 0, spaces: 1 }); // only the device's private space is left

  // The front desk still has everything; the ward tablet joins again and gets it back.
  await front.page.goto(`${relay.url}/`);
  await expect(patientList(front.page)).toContainText("Mary Seacole");
  await joinWithLink(ward.page, link, "Ward tablet", "Hill Clinic");
  await expect(patientList(ward.page)).toContainText("Mary Seacole");
  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});
