// Issue 16 item 5: a verifiable audit export. Two members edit a clinic; the admin exports; the CLI
// (spawned as a real process) says INTACT. Then one byte flipped at a seeded sample of positions across
// the whole file: the CLI exits non-zero every time and names where. And a commit a reader wrote (its
// client bypassed) is flagged with the role it had.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAudit } from "../../src/audit/verify-audit.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import { openDatabase } from "../../src/index.ts";
import { carry, logOf, memberDevice, type MemberDb } from "../member-devices.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const cli = join(root, "client", "src", "audit", "cli.ts");
const dir = mkdtempSync(join(tmpdir(), "shoal-audit-"));
// The CLI compiled from the sources once for this file, as tsx would compile it, into one module that
// plain Node runs: each of the 25 runs below started tsx and compiled the module graph again (1.5 to
// 3 s each on a loaded 2-core machine, against under 1 s). Packages stay imports (Automerge loads its
// wasm from its own directory), so the bundle sits under node_modules, where Node finds them.
const cacheDir = join(root, "node_modules", ".cache");
mkdirSync(cacheDir, { recursive: true });
const bundleDir = mkdtempSync(join(cacheDir, "shoal-audit-cli-"));
const bundle = join(bundleDir, "cli.mjs");
beforeAll(async () => {
  await build({
    entryPoints: [cli],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    conditions: ["shoal-source"],
    // Every import the sources wrote is kept, whatever a package.json says of side effects.
    ignoreAnnotations: true,
    logLevel: "error",
  });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(bundleDir, { recursive: true, force: true });
});

/** Runs `shoal-audit verify <file>` built from the sources, as a separate Node process. */
function verifyCli(bytes: Uint8Array, name: string): Promise<{ code: number; out: string }> {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle, "verify", file], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: code ?? -1, out }));
  });
}

/** An admin and a writer who both edited two patients, each holding everything. */
async function clinic() {
  const [a, b] = await Promise.all([memberDevice("audit-admin"), memberDevice("audit-writer")]);
  const space = await a.createSpace({ name: "North Clinic" });
  await joinByInvitation(
    b.replica,
    await a.invite(space, { role: "writer", me: "Dr. Admin" }),
    logOf(a),
    "Nurse B",
  );
  await carry(b, a, space);
  const ada = await a.patients.insert({ name: "Ada", notes: "allergic to penicillin" }, { space });
  await carry(a, b, space);
  await b.patients.update(ada, (p) => {
    p.notes = "allergic to penicillin and latex";
  });
  const bob = await b.patients.insert({ name: "Bob", notes: "" }, { space });
  await carry(b, a, space);
  await a.patients.update(bob, (p) => {
    p.name = "Robert";
  });
  await carry(a, b, space);
  return { a, b, space, ada, bob };
}

describe("audit export", () => {
  it("verifies an export of two members' edits, and reports every flipped byte with its place", async () => {
    const { a, b, space, ada, bob } = await clinic();
    const file = await a.exportAudit(space);
    const report = await verifyAudit(file);
    expect(report.findings).toEqual([]);
    const changes = report.events.filter((e) => e.kind === "change");
    expect(
      changes.map((e) => [
        e.name,
        e.role,
        e.changes!.map((c) => `${c.op} ${c.record} ${c.fields.join("+")}`),
      ]),
    ).toEqual([
      ["Dr. Admin", "admin", [`insert ${ada} name+notes`]],
      ["Nurse B", "writer", [`update ${ada} notes`]],
      ["Nurse B", "writer", [`insert ${bob} name+notes`]],
      ["Dr. Admin", "admin", [`update ${bob} name`]],
    ]);
    expect(changes.map((e) => e.device)).toEqual([a.deviceId, b.deviceId, b.deviceId, a.deviceId]);
    // The export holds no space key: only derived keys, which do not give it back.
    const row = (await a.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
    expect(Buffer.from(file).includes(Buffer.from(row.key))).toBe(false);

    // The packed-package e2e runs the installed `shoal-audit` on this fixture (regenerate it with this env).
    if (process.env.AUDIT_WRITE_FIXTURE)
      writeFileSync(join(root, "client/test/audit/fixtures/clinic.audit"), file);
    const ok = await verifyCli(file, "intact.audit");
    expect(ok.out).toContain("VERDICT: INTACT");
    expect(ok.out).toMatch(
      /\(claimed\) {2}Nurse B \[person \w+, device \w+, role writer\] {2}update patients\/[\w-]+ fields: notes/,
    );
    expect(ok.code).toBe(0);

    // One flipped byte per stratum of the file (so every section is hit), plus the first and last byte.
    const seed = Number(process.env.AUDIT_FLIP_SEED ?? 16_005);
    console.log(`audit flip test: seed ${seed} (AUDIT_FLIP_SEED=${seed} to replay), ${file.length} bytes`);
    const rnd = seededRandom(seed);
    const strata = 20;
    // Also a high byte of the first run's `to` (it once made the check walk 2^48 seqs).
    const commitsAt = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(35 + 49 + 1));
    const positions = new Set([0, file.length - 1, commitsAt + 4 + 16 + 8 + 1]);
    for (let i = 0; i < strata; i++) {
      const lo = Math.floor((file.length * i) / strata);
      const hi = Math.floor((file.length * (i + 1)) / strata);
      positions.add(lo + rnd.int(hi - lo));
    }
    const results: { at: number; code: number; out: string }[] = [];
    const queue = [...positions];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
          const bad = file.slice();
          bad[at] = bad[at]! ^ (1 << rnd.int(8));
          results.push({ at, ...(await verifyCli(bad, `flip-${at}.audit`)) });
        }
      }),
    );
    for (const r of results) {
      const why = `seed ${seed}, byte ${r.at}:\n${r.out}`;
      expect(r.code, why).toBe(1);
      expect(r.out, why).toMatch(/PROBLEM in \S.* at offset \d+/);
      expect(r.out, why).toContain("VERDICT: NOT INTACT");
      // No stack trace: a frame is in the bundle (.mjs) or a package's own code (.js).
      expect(r.out, why).not.toMatch(/TypeError|RangeError|at .*\.m?[jt]s:\d+/);
    }
  }, 120_000);

  it("flags a commit by a member whose role was reader when it was written", async () => {
    const { a, b, space, ada } = await clinic();
    const state = (await readMembership(a.replica.dexie, space.id))!;
    await a.setRole(space, state.deviceOwner.get(b.deviceId)!, "reader");
    await carry(a, b, space);
    // B's client now refuses B's writes; a hostile B bypasses that check and signs one anyway.
    const rows = b.replica.dexie.table<SpaceRow>("_spaces");
    const { readOnly: _dropped, ...hostile } = (await rows.get(space.id))!;
    await rows.put(hostile);
    await b.patients.update(ada, (p) => {
      p.notes = "changed by a reader";
    });
    await carry(b, a, space);
    const report = await verifyAudit(await a.exportAudit(space));
    const flagged = report.events.filter((e) => !e.allowed);
    expect(flagged.map((e) => [e.device, e.role, e.changes![0]!.fields])).toEqual([
      [b.deviceId, "reader", ["notes"]],
    ]);
    // B's commits before the demotion keep the role B had then.
    expect(
      report.events
        .filter((e) => e.device === b.deviceId && e.kind === "change" && e.allowed)
        .map((e) => e.role),
    ).toEqual(["writer", "writer"]);
    expect(report.findings.map((f) => f.message)).toEqual([
      expect.stringContaining("role at the time: reader"),
    ]);
    const run = await verifyCli(await a.exportAudit(space), "reader.audit");
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/role reader\] {2}update patients\/[\w-]+ fields: notes {2}<-- NOT ALLOWED/);
  }, 60_000);

  it("records a view when a person opens a record of an auditViews collection, and the export shows it", async () => {
    const opened: MemberDb[] = [];
    const device = async (label: string) => {
      const db = (await openDatabase<{ patients: { name: string; notes: string } }>({
        name: `audit-views-${label}-${process.pid}`,
        collections: { patients: { indexes: "id, name", text: ["notes"], auditViews: true } },
        persist: false,
      })) as MemberDb;
      opened.push(db);
      return db;
    };
    try {
      const [a, b] = await Promise.all([device("admin"), device("writer")]);
      const space = await a.createSpace({ name: "North Clinic" });
      await joinByInvitation(
        b.replica,
        await a.invite(space, { role: "writer", me: "Dr. Admin" }),
        logOf(a),
        "Nurse B",
      );
      await carry(b, a, space);
      const ada = await a.patients.insert({ name: "Ada", notes: "" }, { space });
      await carry(a, b, space);
      expect((await b.patients.get(ada))?.name).toBe("Ada"); // a plain read records nothing
      expect((await b.patients.open(ada))?.name).toBe("Ada");
      await carry(b, a, space);
      const report = await verifyAudit(await a.exportAudit(space));
      expect(report.findings).toEqual([]);
      const views = report.events.filter((e) => e.kind === "view");
      expect(views.map((e) => [e.name, e.device, e.role, e.viewed])).toEqual([
        ["Nurse B", b.deviceId, "writer", { collection: "patients", record: ada }],
      ]);
      // An export limited to the record carries its view too; one limited to another record does not.
      const only = await verifyAudit(await a.exportAudit(space, { records: [ada] }));
      expect(only.events.filter((e) => e.kind === "view")).toHaveLength(1);
      const other = await verifyAudit(
        await a.exportAudit(space, { records: ["01900000-0000-7000-8000-000000000000"] }),
      );
      expect(other.events.filter((e) => e.kind !== "membership")).toEqual([]);
      expect(other.findings).toEqual([]);
    } finally {
      for (const db of opened) await db.close();
    }
  }, 60_000);
});
