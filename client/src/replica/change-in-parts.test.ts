// Issue 12, item 7: a write over the per-change op cap is made as several Automerge changes, each
// within the cap, ending on exactly the content one change would have given.
import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { seededRandom } from "../testing/seeded-random.ts";
import { changeInParts } from "./change-in-parts.ts";
import { changeOpCount } from "./change-ops.ts";

type D = Record<string, unknown>;

/** The content of a document with the kind of every value (text, immutable string, counter). */
function content(v: unknown): unknown {
  if (v instanceof A.ImmutableString) return { imm: v.val };
  if (v instanceof A.Counter) return { counter: v.value };
  if (Array.isArray(v)) return v.map(content);
  if (v instanceof Date || v instanceof Uint8Array) return v;
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.keys(v).map((k) => [k, content((v as D)[k])]));
  return v;
}

/** A random large edit: text splices and deletions, list inserts, nested objects, counters, deletes. */
function bigEdit(rnd: ReturnType<typeof seededRandom>): (d: D) => void {
  const plan = Array.from({ length: 12 }, () => [rnd.int(8), rnd.int(1000), rnd.int(150)] as const);
  return (d) => {
    for (const [what, a, b] of plan) {
      const text = d.text as string;
      const list = d.list as unknown[];
      if (what === 0) A.splice(d, ["text"], a % (text.length + 1), 0, "ab😀c".repeat(b));
      else if (what === 1 && text.length > 0) A.splice(d, ["text"], a % text.length, b);
      else if (what === 2) list.splice(a % (list.length + 1), 0, ...Array.from({ length: b }, (_, i) => i));
      else if (what === 3 && list.length > 0) list.splice(a % list.length, b);
      else if (what === 4)
        d[`o${a}`] = {
          n: Object.fromEntries(Array.from({ length: b }, (_, i) => [`k${i}`, i])),
          l: [{ t: "nested text" }, new A.ImmutableString("imm"), new A.Counter(b)],
          when: new Date(a),
        };
      else if (what === 5) (d.c as A.Counter).increment(b);
      else if (what === 6)
        for (const k of Object.keys(d))
          if (k.startsWith("o") && a % 2) delete d[k];
          else A.updateText(d, ["text"], `${"x".repeat(b)}${(d.text as string).slice(b)}`);
    }
  };
}

describe("changeInParts", () => {
  it(
    "ends on the content of one change, in changes of at most maxOps operations (seeded)",
    { timeout: 30_000 },
    () => {
      const seed = Number(process.env.SHOAL_PARTS_SEED ?? 7);
      const rnd = seededRandom(seed);
      let doc = A.from<D>({ text: "hello", list: [1, 2], c: new A.Counter(1) }, { actor: "aa".repeat(16) });
      for (let round = 0; round < 6; round++) {
        const maxOps = 24 + rnd.int(100);
        const edit = bigEdit(rnd);
        const one = A.change(A.clone(doc, { actor: "bb".repeat(16) }), edit);
        const before = A.getHeads(doc);
        const parts = changeInParts(A.clone(doc, { actor: "cc".repeat(16) }), { time: 5 }, edit, maxOps);
        expect(content(parts), `seed ${seed}, round ${round}`).toEqual(content(one));
        const made = A.getChanges(A.view(parts, before), parts);
        expect(made.length, `seed ${seed}, round ${round}`).toBeGreaterThan(1);
        for (const ch of made) {
          expect(changeOpCount(ch), `seed ${seed}, round ${round}`).toBeLessThanOrEqual(maxOps);
          expect(A.decodeChange(ch).time).toBe(5);
        }
        // Another replica applying the parts gets the same content too.
        const [other] = A.applyChanges(A.clone(doc, { actor: "dd".repeat(16) }), made);
        expect(content(other)).toEqual(content(one));
        doc = parts;
      }
    },
  );

  it("makes one change, as A.change does, when it is within the cap", () => {
    const doc = A.from<D>({ a: 1 }, { actor: "aa".repeat(16) });
    const before = A.getHeads(doc);
    const after = changeInParts(doc, {}, (d) => void (d.b = 2), 4);
    expect(A.getChanges(A.view(after, before), after)).toHaveLength(1);
    expect(after).toEqual({ a: 1, b: 2 });
  });
});
