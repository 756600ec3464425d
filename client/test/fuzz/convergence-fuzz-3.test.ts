import { defineFuzzShard } from "./fuzz-shard.ts";

defineFuzzShard(2);
