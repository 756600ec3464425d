// Renders the demo's PNG app icons from demo-app/public/icon.svg with the same headless Chromium the
// browser tests use, so the icons are reproducible here without an image tool. The PNGs are committed;
// run this again after changing the SVG: node scripts/render-icons.mjs
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, chromiumExecutable } from "./chromium.mjs";

const publicDir = fileURLToPath(new URL("../demo-app/public/", import.meta.url));
const svg = readFileSync(`${publicDir}icon.svg`, "utf8");
// Chromium and Android want 192 and 512 pixel PNGs in a manifest; the SVG covers every other size.
const SIZES = [192, 512];

const browser = await chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS });
try {
  for (const size of SIZES) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    const sized = svg.replace("<svg ", `<svg width="${size}" height="${size}" `);
    await page.setContent(`<body style="margin:0">${sized}</body>`);
    await page.screenshot({ path: `${publicDir}icon-${size}.png`, omitBackground: true });
    await page.close();
    console.log(`demo-app/public/icon-${size}.png`);
  }
} finally {
  await browser.close();
}
