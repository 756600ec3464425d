/**
 * Test helpers shipped with the client, for this repository's suites and for adapters written later.
 *
 * @example
 * import { storageContractCases } from "@shoal/client/testing";
 * for (const c of storageContractCases) it(c.name, () => c.run({ openDatabase, dbName: uniqueName() }));
 *
 * @module @shoal/client/testing
 */
export { storageContractCases } from "./storage-contract.ts";
export type { StorageContractCase, StorageContractContext } from "./storage-contract.ts";
export { transportContractCases, relayLikeResponder } from "./transport-contract-cases.ts";
export { claimedTestSpace, type ClaimedTestSpace } from "./claimed-test-space.ts";
