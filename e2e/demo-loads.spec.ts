import { expect, test } from "@playwright/test";
import { collectPageErrors } from "./support/page-errors.ts";

test("the demo page loads without console errors and lists an added patient", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Shoal clinic" })).toBeVisible();
  await expect(page.getByText("No patients yet.")).toBeVisible();

  await page.getByLabel("Name", { exact: true }).fill("Ada Lovelace");
  await page.getByLabel("Ward", { exact: true }).fill("B");
  await page.getByRole("button", { name: "Add patient" }).click();

  const list = page.getByRole("list", { name: "Patients" });
  await expect(list.getByRole("listitem")).toHaveCount(1);
  await expect(list).toContainText("Ada Lovelace");
  await expect(list).toContainText("Ward B");

  await page.getByLabel("Search patients by name").fill("Zed");
  await expect(page.getByText("No patients yet.")).toBeVisible();
  await page.getByLabel("Search patients by name").fill("Ada");
  await expect(list).toContainText("Ada Lovelace");

  expect(errors).toEqual([]);
});
