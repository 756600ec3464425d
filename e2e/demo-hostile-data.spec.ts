// What another device can put in a clinic's records, and an invitation that fails: the demo keeps
// rendering whatever JSON a member wrote (a string or an object where a list of allergies belongs, a
// commit time of 2^63 ms that no Date can hold), shows claimed times as claimed, and never leaves an
// invitation's key in the address bar.
import { parseMemberInvite } from "../client/src/spaces/member-invite-link.ts";
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import { createClinic, patientList, readInvitationLink, syncState } from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

/** The demo's collections (demo-app/src/db.ts), so the other device writes rows the demo reads. */
const DEMO_COLLECTIONS = {
  patients: { indexes: "id, clinic, [clinic+name], [clinic+ward], *tags, *terms", text: ["notes"] },
  visits: "id, clinic, [patientId+date]",
  deviceNames: "id, clinic, deviceId",
};

test("records with tags as a string or an object and a commit time of 2^63 ms from another device render, with the time shown as claimed", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  await createClinic(front.page, relay.url, "Front desk", "North Clinic");
  await expect(syncState(front.page)).toHaveText("Online · up to date");
  const link = await readInvitationLink(front.page);

  // Another member's device: the library itself (the harness page on the same relay), its clock at
  // 2^63 ms, so every commit it makes claims that time.
  const other = await browser.newContext();
  const page = await other.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${relay.url}/harness/index.html`);
  await page.waitForFunction(() => window.__shoalReady === true);
  await page.evaluate(
    async ({ link, collections }) => {
      const { client } = window.__shoal;
      let now: number | null = null;
      const db = await client.openDatabase({
        name: `hostile-${Math.random().toString(36).slice(2)}`,
        collections,
        // A real clock while joining (the redemption must fall before the invitation's expiry), 2^63 after.
        clock: () => now ?? Date.now(),
      });
      db.sync({ relay: location.origin });
      const space = await db.join(link, { name: "Mallory" });
      now = 2 ** 63;
      const base = { clinic: space.id, birthDate: "", sex: "other", phone: "", ward: "Cardiology" };
      await db.patients.insert(
        {
          ...base,
          name: "Mallory String",
          mrn: "MRN-1",
          terms: ["mallory", "string"],
          tags: "latex",
          notes: "",
        },
        { space: space.id },
      );
      await db.patients.insert(
        {
          ...base,
          name: "Mallory Object",
          mrn: { not: "text" },
          terms: "mallory",
          tags: { evil: ["x"] },
          notes: { not: "text" },
        },
        { space: space.id },
      );
      // Wait until the relay holds both.
      await new Promise<void>((resolve) => {
        const sub = db.status.subscribe((s) => {
          if (s.state === "synced" && s.pendingCommits === 0) {
            queueMicrotask(() => sub.unsubscribe());
            resolve();
          }
        });
      });
    },
    { link, collections: DEMO_COLLECTIONS },
  );

  // The list renders both, the string as one allergy.
  await expect(front.page.getByTestId("patient-count")).toHaveText("2 patients");
  const list = patientList(front.page);
  await expect(list.getByRole("link", { name: /Mallory String/ })).toContainText("latex");
  await expect(list.getByRole("link", { name: /Mallory Object/ })).toContainText('{"not":"text"}');

  // A patient page with the malformed fields: the allergies, the note and the audit trail render, and
  // the commit time appears as the raw claim.
  await list.getByRole("link", { name: /Mallory Object/ }).click();
  await expect(front.page.getByRole("heading", { level: 1, name: "Mallory Object" })).toBeVisible();
  await expect(front.page.getByText("No known allergies.")).toBeVisible();
  await expect(front.page.getByRole("textbox", { name: "Clinical note" })).toHaveValue('{"not":"text"}');
  const claim = `claimed: ${String(2 ** 63)}`;
  await expect(front.page.getByRole("list", { name: "Changes" })).toContainText(claim);

  await front.page.getByRole("link", { name: "← All patients" }).click();
  await list.getByRole("link", { name: /Mallory String/ }).click();
  await expect(front.page.getByRole("list", { name: "Allergies" })).toContainText("latex");
  await expect(front.page.getByRole("list", { name: "Changes" })).toContainText(claim);
  // Adding an allergy turns the string back into a list, keeping what it held.
  await front.page.getByLabel("New allergy").fill("peanuts");
  await front.page.getByRole("button", { name: "Add", exact: true }).click();
  await expect(front.page.getByRole("list", { name: "Allergies" })).toContainText("peanuts");
  await expect(front.page.getByRole("list", { name: "Allergies" })).toContainText("latex");

  // The devtools list the commits with their claimed times too.
  await front.page.getByRole("button", { name: /devtools/i }).click();
  await expect(front.page.getByRole("complementary", { name: "Devtools" })).toContainText(claim);
  await expect(front.page.getByTestId("render-error")).toHaveCount(0);
  await front.screenshot(testInfo, "hostile-data-rendered");

  expect(errors).toEqual([]);
  expectNoPageErrors(front);
  await Promise.all([front.close(), other.close()]);
});

test("an invitation's key leaves the address bar as the page opens, and a failed join does not bring it back", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  await createClinic(front.page, relay.url, "Front desk", "North Clinic");
  const link = await readInvitationLink(front.page);
  const fragment = link.slice(link.indexOf("#"));
  // One secret character changed: the checksum fails, so joining fails with InvalidInvitation.
  const at = fragment.indexOf(".") + 2;
  const broken = `${relay.url}/${fragment.slice(0, at)}${fragment[at] === "A" ? "B" : "A"}${fragment.slice(at + 1)}`;
  expect(() => parseMemberInvite(broken)).toThrow();
  const secret = broken.slice(broken.indexOf("#invite=") + "#invite=".length, broken.indexOf("&"));

  const laptop = await DemoDevice.open(browser, "laptop");
  await laptop.page.goto(broken);
  await expect(laptop.page.getByRole("heading", { name: "Join North Clinic" })).toBeVisible();
  expect(await laptop.page.evaluate(() => location.href)).not.toContain("#invite=");
  await laptop.page.getByLabel("Device name").fill("Doctor's laptop");
  await laptop.page.getByRole("button", { name: "Join clinic" }).click();
  await expect(laptop.page.getByRole("alert")).toHaveAttribute("data-code", "InvalidInvitation");
  const href = await laptop.page.evaluate(() => location.href);
  expect(href).not.toContain("#invite=");
  expect(href).not.toContain(secret);
  expect(laptop.page.url()).not.toContain(secret);
  await laptop.screenshot(testInfo, "failed-join");

  expectNoPageErrors(front, laptop);
  await Promise.all([front.close(), laptop.close()]);
});
