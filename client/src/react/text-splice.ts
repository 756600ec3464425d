/**
 * One contiguous edit of a string: at `at`, `remove` UTF-16 code units replaced by `insert`. A
 * keystroke, a paste, a cut or an edit from another device each make one.
 */
export interface Splice {
  readonly at: number;
  readonly remove: number;
  readonly insert: string;
}

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/**
 * The one splice that turns `before` into `after`, keeping their common prefix and suffix. `caret`,
 * where the caret is in `after` once the edit is done, places an ambiguous edit where it happened:
 * typing "a" between the two letters of "aa" gives "aaa", which is an insertion at 1, 2 or 3; with
 * the caret at 2 it is the one at 1. Never cuts a surrogate pair (an emoji) in two.
 *
 * @example
 * diffSplice("first.", "first. second."); // { at: 6, remove: 0, insert: " second." }
 * diffSplice("aa", "aaa", 2); // { at: 1, remove: 0, insert: "a" }
 */
export function diffSplice(before: string, after: string, caret?: number): Splice {
  const shorter = Math.min(before.length, after.length);
  const sameAt = (i: number) => before.charCodeAt(i) === after.charCodeAt(i);
  const sameFromEnd = (i: number) =>
    before.charCodeAt(before.length - 1 - i) === after.charCodeAt(after.length - 1 - i);
  let prefix = 0;
  let suffix = 0;
  if (caret === undefined) {
    while (prefix < shorter && sameAt(prefix)) prefix++;
    while (suffix < shorter - prefix && sameFromEnd(suffix)) suffix++;
  } else {
    // The suffix first, kept right of the caret, so that the prefix (which may then take the rest)
    // ends where the typing began.
    const suffixCap = Math.max(0, Math.min(shorter, after.length - caret));
    while (suffix < suffixCap && sameFromEnd(suffix)) suffix++;
    while (prefix < shorter - suffix && sameAt(prefix)) prefix++;
  }
  if (prefix > 0 && isHigh(before.charCodeAt(prefix - 1))) prefix--;
  if (suffix > 0 && isLow(before.charCodeAt(before.length - suffix))) suffix--;
  return {
    at: prefix,
    remove: before.length - prefix - suffix,
    insert: after.slice(prefix, after.length - suffix),
  };
}

/** `text` with `splice` applied. */
export function applySplice(text: string, splice: Splice): string {
  return text.slice(0, splice.at) + splice.insert + text.slice(splice.at + splice.remove);
}

/**
 * Where a position (a caret, one end of a selection) is after someone else's `edit`: a position
 * before the edit, or at its start, stays; one after it moves by the length the edit added or took
 * away; one inside text the edit replaced goes to the end of the replacement.
 *
 * @example
 * mapPosition(6, { at: 0, remove: 0, insert: "Ward: " }); // 12
 */
export function mapPosition(position: number, edit: Splice): number {
  if (position <= edit.at) return position;
  if (position >= edit.at + edit.remove) return position + edit.insert.length - edit.remove;
  return edit.at + edit.insert.length;
}

/**
 * Re-expresses `mine`, a splice made against some text, for the text after `theirs` (made against the
 * same text) was applied: the concurrent edit is kept and mine lands beside it. When both changed the
 * same stretch, what they inserted survives and only the characters mine removed that they did not
 * are removed, which may take two splices (returned in the order to apply them). At the same
 * position, mine goes first.
 *
 * @example
 * transformSplice({ at: 6, remove: 0, insert: "!" }, { at: 0, remove: 0, insert: "Ward: " });
 * // [{ at: 12, remove: 0, insert: "!" }]
 */
export function transformSplice(mine: Splice, theirs: Splice): Splice[] {
  const start = mine.at;
  const end = mine.at + mine.remove;
  const theirEnd = theirs.at + theirs.remove;
  const shift = theirs.insert.length - theirs.remove;
  let out: Splice[];
  if (end <= theirs.at) out = [mine];
  else if (start >= theirEnd) out = [{ ...mine, at: start + shift }];
  else if (start < theirs.at) {
    // Mine starts before theirs: my insert replaces my part left of theirs; my part right of theirs
    // (if any) goes too, and their insertion stays between.
    out = [{ at: start, remove: theirs.at - start, insert: mine.insert }];
    if (end > theirEnd) out.unshift({ at: theirEnd + shift, remove: end - theirEnd, insert: "" });
  } else {
    out = [
      { at: theirs.at + theirs.insert.length, remove: Math.max(0, end - theirEnd), insert: mine.insert },
    ];
  }
  return out.filter((s) => s.remove > 0 || s.insert !== "");
}

/**
 * Re-expresses `mine`, made against the text `seen`, for `current`: `seen` changed by edits made
 * elsewhere meanwhile, taken as one splice (their common prefix and suffix kept).
 *
 * @example
 * rebaseSplice({ at: 6, remove: 0, insert: " second." }, "first.", "Ward: first.");
 * // [{ at: 12, remove: 0, insert: " second." }]
 */
export function rebaseSplice(mine: Splice, seen: string, current: string): Splice[] {
  if (seen === current) return mine.remove > 0 || mine.insert !== "" ? [mine] : [];
  return transformSplice(mine, diffSplice(seen, current));
}
