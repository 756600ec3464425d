// Every code `db.status.lastError` can carry is listed in the README's error table (issue 12 item 10):
// the codes of every ShoalError the sources construct, and `Relay:<code>` for every relay error code.
// Scanning the sources keeps this true as codes are added.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODE_BYTES } from "./protocol/index.ts";

const root = join(import.meta.dirname, "..", "..");

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** Codes given to ShoalError (directly, under an alias, or through a subclass's `super`). */
function constructedCodes(): Set<string> {
  const codes = new Set<string>();
  const pattern = /(?:\bsuper|\bShoalError\w*)\(\s*"([A-Za-z][\w:-]*)"/g;
  for (const file of sources(join(root, "client", "src")))
    for (const m of readFileSync(file, "utf8").matchAll(pattern)) codes.add(m[1]!);
  return codes;
}

/** The backticked codes of the first column of the table under README's "### Errors". */
function readmeCodes(): Set<string> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Errors"));
  const table = section.slice(0, section.indexOf("\n###"));
  const codes = new Set<string>();
  for (const line of table.split("\n").filter((l) => l.startsWith("| `")))
    for (const m of line.matchAll(/`([A-Za-z][\w:<>-]*)`/g)) codes.add(m[1]!);
  return codes;
}

describe("README error table", () => {
  it("finds the codes it checks (the scan itself works)", () => {
    const found = constructedCodes();
    for (const code of ["ValidationError", "SyncError", "NotConnected", "DecryptError", "IntegrityError"])
      expect(found).toContain(code);
  });

  it("lists every code the sources construct and every Relay:<code>", () => {
    const listed = readmeCodes();
    const wanted = [...constructedCodes(), ...Object.keys(ERROR_CODE_BYTES).map((c) => `Relay:${c}`)];
    expect(wanted.filter((c) => !listed.has(c))).toEqual([]);
  });
});
