/**
 * The lowercase words of a patient's name and record number, which search matches by prefix: typing
 * "love" finds "Ada Lovelace", and "mrn-0042" finds the record by number.
 */
export function searchTerms(name: string, mrn: string): string[] {
  const words = `${name} ${mrn}`
    .toLocaleLowerCase()
    .split(/[\s,]+/)
    .filter((w) => w.length > 0);
  return [...new Set(words)];
}
