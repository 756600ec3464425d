import { describe, it } from "vitest";
import { openDatabase } from "../database.ts";
import { storageContractCases } from "./storage-contract.ts";

let n = 0;
describe("storage contract on fake-indexeddb", () => {
  for (const c of storageContractCases) {
    it(c.name, () =>
      c.run({ openDatabase, dbName: `contract-${n++}-${Math.random().toString(36).slice(2)}` }),
    );
  }
});
