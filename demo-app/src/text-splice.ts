/**
 * One contiguous change between two strings: at `at`, `remove` characters replaced by `insert`.
 * Typing, pasting and a remote edit arriving between two renders each look like one splice.
 */
export interface Splice {
  at: number;
  remove: number;
  insert: string;
}

/** The single splice turning `a` into `b` (common prefix and suffix kept). */
export function diffSplice(a: string, b: string): Splice {
  let start = 0;
  const max = Math.min(a.length, b.length);
  while (start < max && a.charCodeAt(start) === b.charCodeAt(start)) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a.charCodeAt(endA - 1) === b.charCodeAt(endB - 1)) {
    endA--;
    endB--;
  }
  return { at: start, remove: endA - start, insert: b.slice(start, endB) };
}

function apply(text: string, s: Splice): string {
  return text.slice(0, s.at) + s.insert + text.slice(s.at + s.remove);
}

/**
 * Replays this textarea's edits (`base` -> `local`) on top of what the document holds now (`base` ->
 * `current`, with other people's edits): the three-way merge that keeps both. The result is then
 * assigned to the text field, and the library turns it into character operations against `current`,
 * so nothing another device typed is deleted by a stale textarea.
 */
export function rebaseText(base: string, local: string, current: string): string {
  if (current === base) return local;
  if (local === base) return current;
  const mine = diffSplice(base, local);
  const theirs = diffSplice(base, current);
  if (mine.at + mine.remove <= theirs.at) return apply(current, mine);
  const shift = theirs.insert.length - theirs.remove;
  if (mine.at >= theirs.at + theirs.remove) return apply(current, { ...mine, at: mine.at + shift });
  // Both changed the same stretch: keep their text, and put ours right after it, dropping only what
  // we deleted beyond their change.
  const theirEnd = theirs.at + theirs.insert.length;
  const mineEnd = Math.max(theirEnd, mine.at + mine.remove + shift);
  return current.slice(0, theirEnd) + mine.insert + current.slice(mineEnd);
}

/** Where a caret at `caret` ends up after `before` became `after` by someone else's edit. */
export function mapCaret(caret: number, before: string, after: string): number {
  const s = diffSplice(before, after);
  if (caret <= s.at) return caret;
  if (caret >= s.at + s.remove) return caret + s.insert.length - s.remove;
  return s.at + s.insert.length;
}
