import { defineHostileShard } from "./hostile-fuzz-shard.ts";

defineHostileShard(0);
