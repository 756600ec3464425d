import { MemoryStore } from "./memory-store.ts";
import { runStoreContract } from "./store-contract.ts";

runStoreContract("MemoryStore", async () => ({ store: new MemoryStore() }));
