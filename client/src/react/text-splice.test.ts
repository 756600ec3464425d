import { describe, expect, it } from "vitest";
import { seededRandom } from "../testing/seeded-random.ts";
import {
  applySplice,
  diffSplice,
  mapPosition,
  rebaseSplice,
  transformSplice,
  type Splice,
} from "./text-splice.ts";

describe("diffSplice", () => {
  it("finds the one edit between two texts", () => {
    expect(diffSplice("first.", "first. second.")).toEqual({ at: 6, remove: 0, insert: " second." });
    expect(diffSplice("first.", "Ward: first.")).toEqual({ at: 0, remove: 0, insert: "Ward: " });
    expect(diffSplice("hello world", "hello there")).toEqual({ at: 6, remove: 5, insert: "there" });
    expect(diffSplice("abc", "ac")).toEqual({ at: 1, remove: 1, insert: "" });
    expect(diffSplice("same", "same")).toEqual({ at: 4, remove: 0, insert: "" });
    expect(diffSplice("", "new")).toEqual({ at: 0, remove: 0, insert: "new" });
  });

  it("places an ambiguous keystroke at the caret", () => {
    // "a" typed between the two letters of "aa": the caret is then at 2.
    expect(diffSplice("aa", "aaa", 2)).toEqual({ at: 1, remove: 0, insert: "a" });
    expect(diffSplice("aa", "aaa", 1)).toEqual({ at: 0, remove: 0, insert: "a" });
    expect(diffSplice("aa", "aaa")).toEqual({ at: 2, remove: 0, insert: "a" });
    // Backspace in "aaa" with the caret at 2 leaves it at 1: the middle letter went.
    expect(diffSplice("aaa", "aa", 1)).toEqual({ at: 1, remove: 1, insert: "" });
    // A selection replaced by typing.
    expect(diffSplice("hello world", "hello X", 7)).toEqual({ at: 6, remove: 5, insert: "X" });
  });

  it("never cuts a surrogate pair in two", () => {
    // 😀 is \ud83d\ude00 and 😃 is \ud83d\ude03: same high surrogate.
    expect(diffSplice("a😀b", "a😃b")).toEqual({ at: 1, remove: 2, insert: "😃" });
    // Different high surrogates before the same low one.
    expect(diffSplice("x\ud83d\ude00", "x\ud83c\ude00")).toEqual({
      at: 1,
      remove: 2,
      insert: "\ud83c\ude00",
    });
  });

  it("gives a splice that turns one text into the other, whole characters only, whatever the caret (seeded)", () => {
    const seed = 1401;
    const rnd = seededRandom(seed);
    const alphabet = ["a", "b", " ", "😀", "😃"];
    const word = () => Array.from({ length: rnd.int(8) }, () => rnd.pick(alphabet)).join("");
    for (let i = 0; i < 500; i++) {
      const before = word();
      const after = word();
      const caret = rnd.int(after.length + 1);
      const splice = diffSplice(before, after, rnd.int(2) === 0 ? caret : undefined);
      expect(applySplice(before, splice), `seed ${seed}, case ${i}`).toBe(after);
      const cutsPair = (text: string, at: number) => /[\udc00-\udfff]/.test(text.charAt(at));
      expect(
        cutsPair(before, splice.at) || cutsPair(before, splice.at + splice.remove),
        `seed ${seed}, case ${i}`,
      ).toBe(false);
    }
  });
});

describe("mapPosition", () => {
  const edit: Splice = { at: 4, remove: 2, insert: "XYZ" };
  it("keeps positions before the edit and shifts those after it by the length it added", () => {
    expect(mapPosition(0, edit)).toBe(0);
    expect(mapPosition(4, edit)).toBe(4);
    expect(mapPosition(6, edit)).toBe(7);
    expect(mapPosition(10, edit)).toBe(11);
    expect(mapPosition(6, { at: 0, remove: 0, insert: "Ward: " })).toBe(12);
    expect(mapPosition(6, { at: 1, remove: 3, insert: "" })).toBe(3);
  });

  it("moves a position inside replaced text to the end of the replacement", () => {
    expect(mapPosition(5, edit)).toBe(7);
  });
});

describe("transformSplice", () => {
  const apply = (text: string, splices: Splice[]) => splices.reduce(applySplice, text);

  it("keeps an edit before theirs in place and shifts one after it", () => {
    const base = "first.";
    const theirs: Splice = { at: 0, remove: 0, insert: "Ward: " };
    const mine: Splice = { at: 6, remove: 0, insert: " second." };
    expect(apply(applySplice(base, theirs), transformSplice(mine, theirs))).toBe("Ward: first. second.");
    const early: Splice = { at: 0, remove: 1, insert: "F" };
    const late: Splice = { at: 6, remove: 0, insert: "!" };
    expect(transformSplice(early, late)).toEqual([early]);
  });

  it("puts mine first when both insert at the same place", () => {
    const base = "ab";
    const theirs: Splice = { at: 1, remove: 0, insert: "T" };
    const mine: Splice = { at: 1, remove: 0, insert: "M" };
    expect(apply(applySplice(base, theirs), transformSplice(mine, theirs))).toBe("aMTb");
  });

  it("keeps what they inserted when both changed the same stretch", () => {
    const base = "0123456789";
    // They replaced 3-5 with "abc"; I deleted 1-7: their "abc" stays, the rest of my deletion goes.
    const theirs: Splice = { at: 3, remove: 3, insert: "abc" };
    const mine: Splice = { at: 1, remove: 7, insert: "M" };
    expect(apply(applySplice(base, theirs), transformSplice(mine, theirs))).toBe("0Mabc89");
    // Mine starting inside theirs: after their insertion.
    const inside: Splice = { at: 4, remove: 4, insert: "I" };
    expect(apply(applySplice(base, theirs), transformSplice(inside, theirs))).toBe("012abcI89");
    // Mine wholly inside what they removed: only my insertion is left to do.
    const within: Splice = { at: 4, remove: 1, insert: "" };
    expect(transformSplice(within, theirs)).toEqual([]);
  });

  it("merges edits of separate stretches the same in either order (seeded)", () => {
    const seed = 2026;
    const rnd = seededRandom(seed);
    for (let i = 0; i < 500; i++) {
      const base = Array.from({ length: 4 + rnd.int(12) }, () => rnd.pick(["a", "b", "c"])).join("");
      const cut = 1 + rnd.int(base.length - 1);
      const edit = (lo: number, hi: number): Splice => {
        const at = lo + rnd.int(hi - lo + 1);
        return { at, remove: rnd.int(hi - at + 1), insert: rnd.pick(["", "X", "YY"]) };
      };
      // One edit left of `cut`, the other right of it (touching it at most).
      const left = edit(0, cut);
      const right = edit(left.at + left.remove, base.length);
      const [mine, theirs] = rnd.int(2) === 0 ? [left, right] : [right, left];
      const mineFirst = apply(applySplice(base, mine), transformSplice(theirs, mine));
      const theirsFirst = apply(applySplice(base, theirs), transformSplice(mine, theirs));
      // Two insertions at one place are the one case where the order decides (mine goes first).
      if (mine.at !== theirs.at || mine.remove + theirs.remove > 0) {
        expect(theirsFirst, `seed ${seed}, case ${i}: ${JSON.stringify({ base, mine, theirs })}`).toBe(
          mineFirst,
        );
      }
    }
  });
});

describe("rebaseSplice", () => {
  it("re-expresses a keystroke made against an old text for the text now", () => {
    expect(rebaseSplice({ at: 6, remove: 0, insert: " second." }, "first.", "Ward: first.")).toEqual([
      { at: 12, remove: 0, insert: " second." },
    ]);
    expect(rebaseSplice({ at: 6, remove: 0, insert: "!" }, "first.", "first.")).toEqual([
      { at: 6, remove: 0, insert: "!" },
    ]);
    expect(rebaseSplice({ at: 6, remove: 0, insert: "" }, "first.", "first.")).toEqual([]);
  });
});
