/// <reference types="node" />
// `shoal-audit verify <file>`: checks a Shoal audit file (PROTOCOL.md 11) offline and prints who did
// what, when (as claimed), and a verdict. Exit code 0: intact and every commit allowed; 1: something
// was found (tampering, a broken chain, a commit the membership log refuses); 2: usage or unreadable.
import { readFile } from "node:fs/promises";
import { formatEvent } from "./audit-events.ts";
import { verifyAudit } from "./verify-audit.ts";

const USAGE = "usage: shoal-audit verify <file>";

async function main(args: string[]): Promise<number> {
  if (args[0] !== "verify" || args.length !== 2) {
    console.error(USAGE);
    return 2;
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(args[1]!));
  } catch (e) {
    console.error(`shoal-audit: cannot read ${args[1]}: ${(e as Error).message}`);
    return 2;
  }
  const report = await verifyAudit(bytes);
  const out: string[] = [];
  out.push(`Shoal audit file ${args[1]} (${bytes.length} bytes)`);
  if (report.space) out.push(`space ${report.space}`);
  if (report.scope) {
    const s = report.scope;
    const t = (v: number | null) => (v === null ? "any" : new Date(v).toISOString());
    out.push(
      `scope: claimed times ${t(s.from)} to ${t(s.to)}, records ${s.records ? s.records.join(", ") : "all"}; exported by device ${s.exportedBy} at ${new Date(s.exportedAt).toISOString()} (claimed)`,
    );
  }
  out.push("", "Times are the authors' clocks: claims, not proofs.", "");
  for (const e of report.events) out.push(formatEvent(e));
  out.push("");
  const c = report.counts;
  out.push(`checked ${c.commits} signed commits (${c.membership} membership operations, ${c.opened} opened)`);
  for (const f of report.findings)
    out.push(`PROBLEM in ${f.where}${f.offset !== undefined ? ` at offset ${f.offset}` : ""}: ${f.message}`);
  out.push(
    report.intact
      ? "VERDICT: INTACT: every signature, chain link and role checks, and the summaries are what the signed commits say."
      : `VERDICT: NOT INTACT: ${report.findings.length} problem(s) found.`,
  );
  console.log(out.join("\n"));
  return report.intact ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    console.error(`shoal-audit: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 2;
  },
);
