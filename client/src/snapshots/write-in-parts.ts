/**
 * Records written per IndexedDB transaction of a snapshot import (a commit weighs the records it
 * carries). An import is checked whole first and then written in transactions of this many records,
 * with a yield to the page between two (`storeInSteps`), so queries are served in between: 200 records
 * (a document and a row each) take about 10 ms to hand to IndexedDB. One transaction over the whole
 * snapshot held every query of the database for seconds (issue 15: a search typed meanwhile waited
 * 5.5 s at 10,000 records).
 */
export const IMPORT_PART = 200;
