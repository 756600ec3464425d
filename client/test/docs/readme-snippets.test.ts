// Docs that run (issue 14 item 10): every ```ts and ```tsx block of every README.md in the repository is
// type-checked as an app would compile it, so the README cannot drift from the API again. Two canary
// snippets, checked in the same compiler run, prove that the check can fail.
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkSnippets, snippetsOf, type Snippet, type SnippetError } from "./check-snippets.ts";
import { README_PRELUDE } from "./readme-prelude.ts";

const root = join(import.meta.dirname, "..", "..", "..");
const SKIP = new Set(["node_modules", "dist", ".git", ".test-results", "test-results", "relay-data"]);

/** Every README.md of the repository, relative to its root. */
function readmes(dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return SKIP.has(e.name) || e.name.startsWith(".") ? [] : readmes(join(dir, e.name));
    return e.name === "README.md" ? [relative(root, join(dir, e.name))] : [];
  });
}

const files = readmes();
const snippets = snippetsOf(root, files);
const canaries: Snippet[] = [
  { file: "canary", line: 1, lang: "ts", code: "console.log(patientCount);" },
  { file: "canary", line: 1, lang: "ts", code: 'await db.patients.where("nmae").equals("A").toArray();' },
];
let errors: SnippetError[] = [];

beforeAll(() => {
  errors = checkSnippets(root, [...snippets, ...canaries], README_PRELUDE);
}, 180_000);

const errorsOf = (s: Snippet) => errors.filter((e) => e.snippet === s).map((e) => e.message);

describe("README code blocks", () => {
  it("finds the READMEs and their TypeScript blocks", () => {
    expect(files).toEqual(expect.arrayContaining(["README.md", join("client", "README.md")]));
    expect(snippets.length).toBeGreaterThan(10);
    expect(snippets.some((s) => s.code.includes("collection<Patient>()"))).toBe(true);
  });

  it("fails a snippet that uses an undefined variable or a wrong index (the check works)", () => {
    expect(errorsOf(canaries[0]!).join("\n")).toMatch(/Cannot find name 'patientCount'/);
    expect(errorsOf(canaries[1]!).join("\n")).toMatch(/"nmae"/);
  });

  it.each(snippets.map((s) => [`${s.file}:${s.line}`, s] as const))("%s compiles", (_, snippet) => {
    expect(errorsOf(snippet)).toEqual([]);
  });
});
