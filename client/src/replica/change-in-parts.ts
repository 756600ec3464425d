import * as A from "@automerge/automerge";
import { MAX_OPS_PER_CHANGE } from "../protocol/limits.ts";
import { changeOpCount } from "./change-ops.ts";

/**
 * Makes an Automerge change with `fn`, as several changes of at most `maxOps` operations each when
 * one would hold more (PROTOCOL.md 3.2: receivers refuse a change over `MAX_OPS_PER_CHANGE`, so that
 * no single change holds their page for long). The common small change costs nothing extra: `fn` runs
 * once, as one change, and only a change over the cap is made again in parts. The parts replay the
 * difference the one change made (`A.diff`), in order, cutting long text splices, list inserts and
 * deletions into pieces; the document they end on has the same content as the one change's, which is
 * checked. Every part carries `options` (the device's clock), none a patch callback.
 *
 * @example
 * doc = changeInParts(doc, { time }, (d) => void (d.notes = pastedNote)); // 100,000 characters: 196 changes
 */
export function changeInParts<T>(
  doc: A.Doc<T>,
  options: A.ChangeOptions<T>,
  fn: A.ChangeFn<T>,
  maxOps: number = MAX_OPS_PER_CHANGE,
): A.Doc<T> {
  // A copy of the document before the change makes the parts: copied now, not once outdated by the
  // change (that copy rebuilds its history: 0.9 s for a 200,000-character text, against 6 ms now).
  const before = A.clone(doc, { actor: A.getActorId(doc) });
  const whole = A.change(doc, options, fn);
  if (sameHeads(whole, before)) return whole;
  const last = A.getLastLocalChange(whole)!;
  const ops = changeOpCount(last);
  if (ops !== null && ops <= maxOps) return whole;
  const patches = A.diff(whole, A.getHeads(before), A.getHeads(whole));
  let cur = before;
  const time = options.time === undefined ? {} : { time: options.time };
  let batch: Step[] = [];
  let weight = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const steps = batch;
    cur = A.change(cur, time, (d) => {
      for (const s of steps) s.run(d as Record<string, unknown>);
    });
    const made = changeOpCount(A.getLastLocalChange(cur)!);
    if (made === null || made > maxOps)
      throw new Error(`Internal: a part of a large change holds ${made} operations (at most ${maxOps}).`);
    batch = [];
    weight = 0;
  };
  for (const p of patches) {
    // A text deletion is cut at character boundaries of the text as it is then: apply what came before.
    if (p.action === "del" && typeof p.path[p.path.length - 1] === "number") flush();
    for (const s of steps(p, maxOps, cur)) {
      if (weight + s.ops > maxOps) flush();
      batch.push(s);
      weight += s.ops;
    }
  }
  flush();
  if (!sameContent(cur, whole))
    throw new Error("Internal: a large change made in parts does not give the same content.");
  return cur;
}

/** One piece of a patch: at most `maxOps` Automerge operations, run inside `A.change`. */
interface Step {
  readonly ops: number;
  run(d: Record<string, unknown>): void;
}

function steps(p: A.Patch, maxOps: number, now: A.Doc<unknown>): Step[] {
  const path = p.path;
  const at = (d: Record<string, unknown>, n: number): Record<string | number, unknown> => {
    let o: unknown = d;
    for (let i = 0; i < n; i++) o = (o as Record<string | number, unknown>)[path[i]!];
    return o as Record<string | number, unknown>;
  };
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1]!;
  switch (p.action) {
    case "put":
      return [{ ops: 1, run: (d) => void (at(d, path.length - 1)[key] = fresh(p.value)) }];
    case "inc":
      return [{ ops: 1, run: (d) => (at(d, path.length - 1)[key] as A.Counter).increment(p.value) }];
    case "insert": {
      const out: Step[] = [];
      const index = key as number;
      for (let i = 0; i < p.values.length; i += maxOps) {
        const part = p.values.slice(i, i + maxOps);
        out.push({
          ops: part.length,
          run: (d) =>
            void (at(d, path.length - 1) as unknown as unknown[]).splice(index + i, 0, ...part.map(fresh)),
        });
      }
      return out;
    }
    case "splice": {
      const out: Step[] = [];
      const index = key as number;
      for (let i = 0; i < p.value.length;) {
        let end = Math.min(i + maxOps, p.value.length);
        // Never between the two halves of a surrogate pair.
        if (end < p.value.length && isHighSurrogate(p.value.charCodeAt(end - 1))) end--;
        const text = p.value.slice(i, end);
        const from = index + i;
        out.push({ ops: text.length, run: (d) => A.splice(d, parentPath, from, 0, text) });
        i = end;
      }
      return out;
    }
    case "del": {
      if (typeof key === "string") return [{ ops: 1, run: (d) => void delete at(d, path.length - 1)[key] }];
      const out: Step[] = [];
      let target: unknown = now;
      for (const k of parentPath) target = (target as Record<string | number, unknown>)[k];
      const text = typeof target === "string" ? target : null;
      for (let pos = key, left = p.length ?? 1; left > 0;) {
        let n = Math.min(left, maxOps);
        // Never between the two halves of a surrogate pair (one character, one operation).
        if (text && n < left && isHighSurrogate(text.charCodeAt(pos + n - 1))) n += n > 1 ? -1 : 1;
        pos += n;
        left -= n;
        out.push({
          ops: n,
          run: (d) => {
            const parent = at(d, path.length - 1);
            if (typeof parent === "string") A.splice(d, parentPath, key, n);
            else (parent as unknown as unknown[]).splice(key, n);
          },
        });
      }
      return out;
    }
    default:
      // Marks are never made by Shoal's writes (the draft has no way to make one).
      throw new Error(`Internal: a large change holds a "${p.action}" patch, which cannot be split.`);
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * A value of a patch as a new Automerge value: a plain string is new (empty) text, filled by the
 * splices that follow; objects and lists are new and empty, filled by the puts and inserts that follow.
 */
function fresh(v: unknown): unknown {
  if (v instanceof A.Counter) return new A.Counter(v.value);
  if (v instanceof A.ImmutableString) return new A.ImmutableString(v.val);
  if (v instanceof Date || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return [];
  if (v !== null && typeof v === "object") return {};
  return v;
}

function sameHeads(a: A.Doc<unknown>, b: A.Doc<unknown>): boolean {
  const x = A.getHeads(a);
  const y = A.getHeads(b);
  return x.length === y.length && x.every((h, i) => h === y[i]);
}

/** True if two documents hold the same content, kinds of values included (text, counters, dates). */
function sameContent(a: unknown, b: unknown): boolean {
  return JSON.stringify(tagged(a)) === JSON.stringify(tagged(b));
}

function tagged(v: unknown): unknown {
  if (v instanceof A.ImmutableString) return ["imm", v.val];
  if (v instanceof A.Counter) return ["counter", v.value];
  if (v instanceof Date) return ["date", v.getTime()];
  if (v instanceof Uint8Array) return ["bytes", [...v]];
  if (typeof v === "string") return ["text", v];
  if (Array.isArray(v)) return v.map(tagged);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = tagged((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}
