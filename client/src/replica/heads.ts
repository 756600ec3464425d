/** True when two Automerge head lists name the same set of changes. */
export function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  if (a.length === 1) return a[0] === b[0];
  const s = new Set(a);
  return b.every((h) => s.has(h));
}
