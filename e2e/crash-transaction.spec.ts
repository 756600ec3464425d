// Crash test in real Chromium (issue 6): one transaction of 2,000 inserts, and the browser is shut down
// (its persistent context closed) in the middle of it, at different points: while the transaction
// function runs, right after it returned, when the IndexedDB write starts, a few milliseconds into that
// write, and after the promise resolved. Reopened on the same profile directory, the database holds
// either ALL of the transaction (rows, documents, one commit with every record, vector at 1) or NONE of
// it, and it keeps working (the next commit takes the next sequence number).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, expect, test, type BrowserContext, type Page } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumExecutable } from "../scripts/chromium.mjs";
import { HARNESS_PATH } from "./support/harness.ts";

const RECORDS = 2000;
const SEED = Number(process.env.SHOAL_CRASH_SEED ?? 1125);
/** A few milliseconds, from the seed: how far into the IndexedDB write the browser goes down. */
const intoWrite = [SEED % 7, 5 + (SEED % 11), 15 + (SEED % 23)];

type Signal = "in-function" | "function-returned" | "idb-write" | "resolved";
const points: { name: string; on: Signal; delayMs: number }[] = [
  { name: "halfway through the transaction function", on: "in-function", delayMs: 0 },
  { name: "right after the transaction function returned", on: "function-returned", delayMs: 0 },
  { name: "at the first write of the IndexedDB transaction", on: "idb-write", delayMs: 0 },
  ...intoWrite.map((ms) => ({
    name: `${ms} ms into the IndexedDB write`,
    on: "idb-write" as const,
    delayMs: ms,
  })),
  { name: "after the transaction resolved", on: "resolved", delayMs: 0 },
];

async function launch(dir: string, baseURL: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.launchPersistentContext(dir, {
    baseURL,
    executablePath: chromiumExecutable(),
    args: [...CHROMIUM_ARGS],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

async function openHarnessPage(page: Page): Promise<void> {
  await page.goto(HARNESS_PATH);
  await page.waitForFunction(() => window.__shoalReady === true);
}

// The browser is shut down while a page call runs: no trace to record across that.
test.use({ trace: "off" });

test.describe("a browser closed in the middle of a large transaction", () => {
  // Two browser starts and 2,000 inserts per case: more than the default minute on a loaded 2-core box.
  test.describe.configure({ timeout: 120_000 });
  for (const point of points) {
    test(`leaves all or nothing: closed ${point.name}`, async ({ baseURL }) => {
      const dir = mkdtempSync(join(tmpdir(), "shoal-crash-profile-"));
      const dbName = `crash-${Date.now().toString(36)}`;
      let context: BrowserContext | null = null;
      try {
        const first = await launch(dir, baseURL!);
        context = first.context;
        let fired!: () => void;
        const signalled = new Promise<void>((resolve) => (fired = resolve));
        const seen: string[] = [];
        await first.page.exposeFunction("__crashSignal", (what: Signal) => {
          seen.push(what);
          if (what === point.on) fired();
        });
        await openHarnessPage(first.page);
        // Runs in the page; not awaited here: the browser goes down in the middle of it.
        const running = first.page
          .evaluate(
            async ({ dbName, records }) => {
              const signal = (what: string) =>
                void (window as unknown as { __crashSignal(w: string): Promise<void> }).__crashSignal(what);
              const { client } = window.__shoal;
              const db = await client.openDatabase({
                name: dbName,
                collections: { patients: "id, name, n" },
                persist: false,
              });
              // The first row written by the commit's IndexedDB transaction (its documents come first).
              let announced = false;
              const realPut = IDBObjectStore.prototype.put;
              IDBObjectStore.prototype.put = function (
                this: IDBObjectStore,
                ...args: Parameters<typeof realPut>
              ) {
                if (!announced && this.name === "_docs") {
                  announced = true;
                  signal("idb-write");
                }
                return realPut.apply(this, args);
              };
              await db.transact(async (tx) => {
                for (let i = 0; i < records; i++) {
                  await tx.collection("patients").insert({ name: `P${String(i).padStart(4, "0")}`, n: i });
                  if (i === records / 2) signal("in-function");
                }
                signal("function-returned");
              });
              signal("resolved");
            },
            { dbName, records: RECORDS },
          )
          .catch((e: Error) => `page gone: ${e.message.split("\n")[0]}`);
        await Promise.race([
          signalled,
          running.then((r) => {
            throw new Error(
              `the transaction ended (${String(r)}) before the "${point.on}" signal; seen: ${seen.join(", ")}`,
            );
          }),
          new Promise((_, reject) =>
            setTimeout(
              () => reject(new Error(`no "${point.on}" signal within 40 s; seen: ${seen.join(", ")}`)),
              40_000,
            ),
          ),
        ]);
        if (point.delayMs > 0) await new Promise((r) => setTimeout(r, point.delayMs));
        await context.close();
        context = null;
        await running;

        // Same profile directory, a new browser: what survived?
        const second = await launch(dir, baseURL!);
        context = second.context;
        await openHarnessPage(second.page);
        const found = await second.page.evaluate(
          async ({ dbName }) => {
            const { client } = window.__shoal;
            const db = await client.openDatabase({
              name: dbName,
              collections: { patients: "id, name, n" },
              persist: false,
            });
            const dexie = db.replica.dexie;
            const rows = await db.collection("patients").count();
            const docs = await dexie.table("_docs").count();
            const commits = (await dexie.table("_commits").toArray()) as { seq: number; records: string[] }[];
            const vector = (await db.vector([db.privateSpace]))[db.privateSpace] ?? {};
            const ids = (await db.collection("patients").orderBy("id").ids()) as string[];
            const names = (await db.collection("patients").orderBy("name").toArray()).map(
              (p) => p.name as string,
            );
            const history =
              ids.length > 0 ? (await db.collection("patients").history(ids[ids.length - 1]!)).length : 0;
            const covered = new Set(commits.flatMap((c) => c.records));
            // The database still works: one more commit, with the next sequence number.
            const extra = await db.collection("patients").insert({ name: "after reopen", n: -1 });
            const extraSeq = (await db.collection("patients").history(extra))[0]!.seq;
            await db.close();
            return {
              rows,
              docs,
              commits: commits.map((c) => ({ seq: c.seq, records: c.records.length })),
              vector: Object.values(vector),
              everyRowInTheCommit: ids.every((id) => covered.has(id)),
              firstAndLast: [names[0], names.at(-1)],
              history,
              extraSeq,
            };
          },
          { dbName },
        );
        console.log(
          `crash ${point.name}: ${found.rows === 0 ? "NONE" : found.rows === RECORDS ? "ALL" : "PARTIAL"} (${JSON.stringify(found)})`,
        );
        if (found.rows === 0) {
          expect(found).toMatchObject({ docs: 0, commits: [], vector: [], history: 0, extraSeq: 1 });
        } else {
          expect(found).toMatchObject({
            rows: RECORDS,
            docs: RECORDS,
            commits: [{ seq: 1, records: RECORDS }],
            vector: [1],
            everyRowInTheCommit: true,
            firstAndLast: ["P0000", `P${RECORDS - 1}`],
            history: 1,
            extraSeq: 2,
          });
        }
        if (point.on === "in-function")
          expect(found.rows, "closed before the function returned: nothing can be saved").toBe(0);
        if (point.on === "resolved")
          expect(found.rows, "closed after the commit resolved: it is durable").toBe(RECORDS);
      } finally {
        await context?.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
