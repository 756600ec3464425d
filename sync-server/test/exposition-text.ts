/**
 * A strict reader of the Prometheus text exposition format 0.0.4 that also enforces what an
 * OpenMetrics parser would reject, so a `/metrics` page that passes it can be scraped either way.
 * Strict on purpose: every sample must sit in the family declared just above it (HELP and TYPE first,
 * families contiguous), no family may be declared twice, and no two families may claim the same
 * sample name or the same OpenMetrics family name (a gauge `x` beside a counter `x_total`).
 */

/** One sample line. */
export interface ExpositionSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family, as declared by its `# TYPE` line. */
export interface ExpositionFamily {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help: string | undefined;
  samples: ExpositionSample[];
}

/** A line or a page breaks the format; `line` is 1-based (0 for page-wide problems). */
export class ExpositionError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(line > 0 ? `line ${line}: ${message}` : message);
    this.name = "ExpositionError";
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/**
 * Parses a page and returns its families by name; throws `ExpositionError` at the first violation.
 *
 * @example
 * const families = parseExposition(await (await fetch(url + "/metrics")).text());
 * families.get("shoal_connections_open")?.samples[0]?.value; // 0
 */
export function parseExposition(text: string): Map<string, ExpositionFamily> {
  if (!text.endsWith("\n")) throw new ExpositionError(0, "the page must end with a newline");
  const families = new Map<string, ExpositionFamily>();
  let current: ExpositionFamily | undefined;
  const lines = text.slice(0, -1).split("\n");
  const open = (name: string, n: number): ExpositionFamily => {
    if (current?.name === name) {
      if (current.samples.length > 0) throw new ExpositionError(n, `${name}: declaration after its samples`);
      return current;
    }
    if (families.has(name)) throw new ExpositionError(n, `family ${name} declared twice`);
    current = { name, type: "untyped", help: undefined, samples: [] };
    families.set(name, current);
    return current;
  };
  const typed = new Set<string>();
  for (const [i, line] of lines.entries()) {
    const n = i + 1;
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) throw new ExpositionError(n, `unexpected comment: ${line}`);
      const [, keyword, name, rest] = m as unknown as [string, "HELP" | "TYPE", string, string | undefined];
      if (!METRIC_NAME.test(name)) throw new ExpositionError(n, `invalid metric name ${name}`);
      const family = open(name, n);
      if (keyword === "HELP") {
        if (family.help !== undefined) throw new ExpositionError(n, `${name}: second HELP`);
        family.help = unescapeHelp(rest ?? "", n);
      } else {
        if (typed.has(name)) throw new ExpositionError(n, `${name}: second TYPE`);
        if (!rest || !TYPES.has(rest)) throw new ExpositionError(n, `${name}: unknown type ${rest}`);
        typed.add(name);
        family.type = rest as ExpositionFamily["type"];
      }
      continue;
    }
    const sample = parseSample(line, n);
    if (!current || !sampleNames(current).includes(sample.name)) {
      throw new ExpositionError(n, `sample ${sample.name} is not part of the family declared above it`);
    }
    if (current.type === "histogram" && sample.name.endsWith("_bucket") && sample.labels.le === undefined)
      throw new ExpositionError(n, `${sample.name} without an le label`);
    current.samples.push(sample);
  }
  for (const f of families.values()) {
    if (!typed.has(f.name)) throw new ExpositionError(0, `${f.name} has no TYPE line`);
    checkSeries(f);
  }
  checkOpenMetricsNames([...families.values()]);
  return families;
}

/** The sample names a family may use in the 0.0.4 format (counters keep their `_total` name). */
function sampleNames(f: ExpositionFamily): string[] {
  switch (f.type) {
    case "histogram":
      return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`];
    case "summary":
      return [f.name, `${f.name}_sum`, `${f.name}_count`];
    default:
      return [f.name];
  }
}

/** No series twice; histogram buckets cumulative, ending in +Inf equal to the count. */
function checkSeries(f: ExpositionFamily): void {
  const seen = new Set<string>();
  for (const s of f.samples) {
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new ExpositionError(0, `${f.name}: series ${key} appears twice`);
    seen.add(key);
  }
  if (f.type !== "histogram") return;
  const groups = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith("_bucket")) g.buckets.push([parseValue(le!, 0), s.value]);
    else if (s.name.endsWith("_count")) g.count = s.value;
  }
  for (const g of groups.values()) {
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new ExpositionError(0, `${f.name}: no +Inf bucket`);
    if (last[1] !== g.count) throw new ExpositionError(0, `${f.name}: +Inf bucket differs from the count`);
    for (let i = 1; i < g.buckets.length; i++) {
      const [bound, n] = g.buckets[i]!;
      const [prevBound, prevN] = g.buckets[i - 1]!;
      if (bound <= prevBound || n < prevN) throw new ExpositionError(0, `${f.name}: buckets not cumulative`);
    }
  }
}

/**
 * What an OpenMetrics parser reads: a counter's family is its name without `_total` (which it must
 * have), and each type reserves sample names. Two families clash when their OpenMetrics names are
 * equal or one's name is among the other's reserved sample names.
 */
function checkOpenMetricsNames(families: ExpositionFamily[]): void {
  const owner = new Map<string, string>();
  const claim = (name: string, by: string) => {
    const other = owner.get(name);
    if (other !== undefined && other !== by)
      throw new ExpositionError(0, `${by} clashes with ${other} on ${name}`);
    owner.set(name, by);
  };
  for (const f of families) {
    if (f.type === "counter" && !f.name.endsWith("_total"))
      throw new ExpositionError(0, `counter ${f.name} must end in _total`);
    if (f.type !== "counter" && f.name.endsWith("_total"))
      throw new ExpositionError(0, `${f.type} ${f.name} must not end in _total, the counters' suffix`);
    const base = f.type === "counter" ? f.name.slice(0, -"_total".length) : f.name;
    const reserved =
      f.type === "counter"
        ? [base, `${base}_total`, `${base}_created`]
        : f.type === "histogram"
          ? [
              base,
              `${base}_bucket`,
              `${base}_sum`,
              `${base}_count`,
              `${base}_created`,
              `${base}_gsum`,
              `${base}_gcount`,
            ]
          : f.type === "summary"
            ? [base, `${base}_sum`, `${base}_count`, `${base}_created`]
            : [base];
    for (const name of reserved) claim(name, f.name);
  }
}

function parseSample(line: string, n: number): ExpositionSample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)(?: (-?\d+))?$/.exec(line);
  if (!m) throw new ExpositionError(n, `malformed sample: ${line}`);
  return { name: m[1]!, labels: m[2] ? parseLabels(m[2], n) : {}, value: parseValue(m[3]!, n) };
}

function parseLabels(text: string, n: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 1;
  while (text[i] !== "}") {
    const name = /^[^=]*/.exec(text.slice(i))![0];
    if (!LABEL_NAME.test(name) || name.startsWith("__"))
      throw new ExpositionError(n, `invalid label name ${name}`);
    if (name in labels) throw new ExpositionError(n, `label ${name} twice`);
    i += name.length;
    if (text.slice(i, i + 2) !== '="') throw new ExpositionError(n, `label ${name} without a quoted value`);
    i += 2;
    let value = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new ExpositionError(n, `unterminated value of ${name}`);
      i += 1;
      if (c === '"') break;
      if (c === "\\") {
        const e = text[i];
        i += 1;
        if (e === "\\" || e === '"') value += e;
        else if (e === "n") value += "\n";
        else throw new ExpositionError(n, `bad escape \\${e} in ${name}`);
      } else if (c === "\n") throw new ExpositionError(n, "newline inside a label value");
      else value += c;
    }
    labels[name] = value;
    if (text[i] === ",") i += 1;
    else if (text[i] !== "}") throw new ExpositionError(n, `expected , or } after label ${name}`);
  }
  if (i !== text.length - 1) throw new ExpositionError(n, "text after the label set");
  return labels;
}

function parseValue(text: string, n: number): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    throw new ExpositionError(n, `bad value ${text}`);
  return Number(text);
}

function unescapeHelp(text: string, n: number): string {
  return text.replace(/\\(.?)/g, (_, e: string) => {
    if (e === "\\") return "\\";
    if (e === "n") return "\n";
    throw new ExpositionError(n, `bad escape \\${e} in HELP`);
  });
}
