import * as A from "@automerge/automerge";
import type { DocState } from "./apply-automerge.ts";
import { CREATION_HEADS, creationRow } from "./creation.ts";
import { pushTo } from "./group-by.ts";
import { isDeleted, materialize, type Row } from "./materialize.ts";
import type { Replica } from "./replica.ts";
import { SLICE_OPS, type Slices } from "./slices.ts";
import type { DocRow } from "./stored-rows.ts";

const EMPTY = new Uint8Array(0);

/** The rows a chunk writes, prepared (Automerge saves, materialized rows) before its transaction. */
export interface ChunkWrites {
  docRows: DocRow[];
  puts: Map<string, Row[]>;
  dels: Map<string, string[]>;
}

/**
 * The rows `docs` leave to write: each record's `_docs` row (an Automerge save, or its creation) and
 * its row in its collection, put or deleted; records of collections this app version does not declare
 * keep only their `_docs` row. A record with neither a document nor a creation writes nothing.
 */
export function* prepareWrites(replica: Replica, docs: Map<string, DocState>): Slices<ChunkWrites> {
  const docRows: DocRow[] = [];
  const puts = new Map<string, Row[]>();
  const dels = new Map<string, string[]>();
  for (const [id, st] of docs) {
    yield 0;
    // An app version without this collection keeps the record only in `_docs`.
    const known = replica.specs.has(st.collection);
    if (st.doc === null) {
      if (!st.create) continue;
      docRows.push({
        id,
        collection: st.collection,
        space: st.space,
        bin: EMPTY,
        heads: [...CREATION_HEADS],
        deleted: 0,
        create: st.create,
      });
      if (known) pushTo(puts, st.collection, creationRow(id, st.create));
      continue;
    }
    const work = Math.min(SLICE_OPS, docWork(st));
    yield work;
    const deleted = isDeleted(st.doc);
    const bin = A.save(st.doc);
    if (known && !deleted) yield work;
    docRows.push({
      id,
      collection: st.collection,
      space: st.space,
      bin,
      heads: A.getHeads(st.doc),
      deleted: deleted ? 1 : 0,
    });
    if (!known) continue;
    if (deleted) pushTo(dels, st.collection, id);
    else pushTo(puts, st.collection, materialize(id, st.doc, replica.specs.get(st.collection)?.inbox));
  }
  return { docRows, puts, dels };
}

/**
 * Work of saving, materializing or storing a document, in operations' worth: measured, turning 16,384
 * values into a row (`materialize`) or an Automerge binary (`A.save`) takes about as long as applying
 * one maximal change, so a document of that size counts as `SLICE_OPS` and gets a slice of its own.
 */
function docWork(st: DocState): number {
  return st.doc === null ? 0 : Math.ceil((st.values ?? 0) / VALUES_PER_OP);
}
const VALUES_PER_OP = 32;

/** The work of `docWork` over all of a chunk's documents. */
export function rowWork(docs: Map<string, DocState>): number {
  let sum = 0;
  for (const st of docs.values()) sum += docWork(st);
  return sum;
}
