import { describe, expect, it } from "vitest";
import {
  envName,
  LIMIT_FLAGS,
  parseRelayCli,
  UsageError,
  USAGE,
  type RelayCliOptions,
} from "./cli-options.ts";

function run(argv: string[], env: Record<string, string> = {}): RelayCliOptions {
  const command = parseRelayCli(argv, env);
  if (command.kind !== "run") throw new Error(`expected a run, got ${command.kind}`);
  return command.options;
}

/** Each flag with a value, a value to give it, and where that value lands in the options. */
const VALUE_FLAGS: [string, string, (o: RelayCliOptions) => unknown, unknown][] = [
  ["port", "4321", (o) => o.port, 4321],
  ["host", "0.0.0.0", (o) => o.host, "0.0.0.0"],
  ["data", "/tmp/relay", (o) => o.dataDir, "/tmp/relay"],
  ["store", "memory", (o) => o.store, "memory"],
  ["redis-prefix", "x:", (o) => o.redisPrefix, "x:"],
  ["static", "dist/app", (o) => o.staticDir, "dist/app"],
  ["origin", "https://a.example", (o) => o.origins, ["https://a.example"]],
  ["verify-threads", "2", (o) => o.verifyThreads, 2],
  ...LIMIT_FLAGS.map((l): [string, string, (o: RelayCliOptions) => unknown, unknown] => {
    // Values that pass every cross-check (frame size range, headers timeout under the request timeout).
    const n = l.flag === "max-frame-bytes" ? 65536 : l.flag === "headers-timeout-ms" ? 5000 : 70000;
    return [l.flag, String(n), (o) => o.limits[l.key], n];
  }),
];
const SWITCHES: [string, (o: RelayCliOptions) => boolean][] = [
  ["allow-unsafe-redis", (o) => o.allowUnsafeRedis],
  ["quiet", (o) => o.quiet],
];

describe("parseRelayCli", () => {
  it("answers -h, --help and --version without reading anything else", () => {
    expect(parseRelayCli(["-h"], {})).toEqual({ kind: "help" });
    expect(parseRelayCli(["--help", "--port", "nope"], {})).toEqual({ kind: "help" });
    expect(parseRelayCli(["--version"], {})).toEqual({ kind: "version" });
  });

  it("has the documented defaults", () => {
    expect(run([])).toEqual({
      port: 8787,
      host: "127.0.0.1",
      store: "sqlite",
      dataDir: "./relay-data",
      redisPrefix: "shoal:",
      allowUnsafeRedis: false,
      staticDir: undefined,
      origins: undefined,
      limits: Object.fromEntries(LIMIT_FLAGS.map((l) => [l.key, undefined])),
      verifyThreads: 0,
      quiet: false,
    });
  });

  for (const [flag, value, read, expected] of VALUE_FLAGS) {
    it(`reads --${flag} from the flag or from ${envName(flag)}, the flag winning`, () => {
      expect(read(run([`--${flag}`, value]))).toEqual(expected);
      expect(read(run([], { [envName(flag)]: value }))).toEqual(expected);
      const other =
        flag === "store" ? "sqlite" : flag === "origin" ? "self" : flag === "port" ? "1" : "65537";
      expect(read(run([`--${flag}`, value], { [envName(flag)]: other }))).toEqual(expected);
    });
  }

  for (const [flag, read] of SWITCHES) {
    it(`reads --${flag} from the flag or from ${envName(flag)} (1/true/yes/on, 0/false/no/off)`, () => {
      expect(read(run([`--${flag}`]))).toBe(true);
      for (const on of ["1", "true", "YES", "on"]) expect(read(run([], { [envName(flag)]: on }))).toBe(true);
      for (const off of ["0", "false", "no", "Off", ""])
        expect(read(run([], { [envName(flag)]: off }))).toBe(false);
      expect(read(run([`--${flag}`], { [envName(flag)]: "0" }))).toBe(true);
      expect(() => run([], { [envName(flag)]: "maybe" })).toThrow(UsageError);
    });
  }

  it("lists every flag and its variable in the usage text", () => {
    for (const [flag] of [...VALUE_FLAGS, ...SWITCHES]) expect(USAGE).toContain(`--${flag}`);
  });

  it("honours PORT when neither --port nor SHOAL_PORT is given", () => {
    expect(run([], { PORT: "5000" }).port).toBe(5000);
    expect(run([], { PORT: "5000", SHOAL_PORT: "6000" }).port).toBe(6000);
    expect(run(["--port", "0"], { PORT: "5000" }).port).toBe(0);
  });

  it("takes SHOAL_REDIS_URL as the store when neither --store nor SHOAL_STORE is given", () => {
    expect(run([], { SHOAL_REDIS_URL: "redis://127.0.0.1:6379/0" }).store).toBe("redis://127.0.0.1:6379/0");
    expect(run([], { SHOAL_REDIS_URL: "redis://127.0.0.1:6379/0", SHOAL_STORE: "memory" }).store).toBe(
      "memory",
    );
  });

  it("takes a redis+cluster:// URL as the store", () => {
    const url = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001";
    expect(run(["--store", url]).store).toBe(url);
    expect(run([], { SHOAL_REDIS_URL: url }).store).toBe(url);
  });

  it("splits SHOAL_ORIGIN on commas and keeps repeated --origin flags", () => {
    expect(run([], { SHOAL_ORIGIN: "self, https://a.example" }).origins).toEqual([
      "self",
      "https://a.example",
    ]);
    expect(run(["--origin", "self", "--origin", "*"]).origins).toEqual(["self", "*"]);
  });

  it("sets the burst to twice --rate", () => {
    expect(run(["--rate", "10"]).limits).toMatchObject({ messagesPerSecond: 10, messageBurst: 20 });
  });

  const bad: [string, string[], Record<string, string>, RegExp][] = [
    ["an unknown flag", ["--prot", "1"], {}, /Unknown option '--prot'/],
    ["a stray argument", ["8787"], {}, /positional/i],
    ["a flag without its value", ["--port"], {}, /argument missing/i],
    ["a port out of range", ["--port", "70000"], {}, /--port \(or SHOAL_PORT, PORT\) needs a port number/],
    ["a bad PORT", [], { PORT: "http" }, /needs a port number from 0 to 65535, not "http"/],
    [
      "a zero limit from the environment",
      [],
      { SHOAL_RATE: "0" },
      /--rate \(or SHOAL_RATE\) needs a positive integer/,
    ],
    ["a limit out of its range", ["--max-frame-bytes", "10"], {}, /maxFrameBytes must be/],
    ["an unknown store", ["--store", "postgres"], {}, /must be sqlite, memory or a redis:\/\/ URL/],
    ["a negative thread count", ["--verify-threads=-1"], {}, /needs a number from 0 to 64/],
    ["a thread count that is not a number", [], { SHOAL_VERIFY_THREADS: "many" }, /from 0 to 64/],
    [
      "a Redis Cluster URL without a port",
      ["--store", "redis+cluster://10.0.0.1:7000,10.0.0.2"],
      {},
      /needs host:port, not "10.0.0.2"/,
    ],
  ];
  for (const [name, argv, env, message] of bad) {
    it(`refuses ${name} with a UsageError`, () => {
      let caught: unknown;
      try {
        parseRelayCli(argv, env);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(UsageError);
      expect((caught as UsageError).code).toBe("usage");
      expect((caught as UsageError).message).toMatch(message);
    });
  }
});
