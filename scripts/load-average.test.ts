import { afterEach, describe, expect, it, vi } from "vitest";
import { formatLoad, startLoadSampler, summarizeLoad } from "./load-average.mjs";

describe("summarizeLoad", () => {
  it("gives min, median and max, rounded to hundredths", () => {
    expect(summarizeLoad([1.234, 0.5, 2], 4)).toEqual({
      cpus: 4,
      samples: 3,
      min: 0.5,
      median: 1.23,
      max: 2,
      loaded: false,
    });
    // An even count: the mean of the middle two.
    expect(summarizeLoad([1, 2, 3, 10], 4).median).toBe(2.5);
  });

  it("flags a run whose load average went above the core count", () => {
    expect(summarizeLoad([0.5, 2.01, 1], 2).loaded).toBe(true);
    expect(summarizeLoad([0.5, 2, 1], 2).loaded).toBe(false);
  });

  it("says nothing was sampled rather than inventing figures", () => {
    const none = summarizeLoad([], 2);
    expect(none).toMatchObject({ samples: 0, min: null, median: null, max: null, loaded: false });
    expect(formatLoad(none)).toBe("not sampled");
  });

  it("prints the figures, and a warning when loaded", () => {
    expect(formatLoad(summarizeLoad([0.5, 1], 2))).toBe("0.5 / 0.75 / 1 (min / median / max) on 2 cores");
    expect(formatLoad(summarizeLoad([3, 4], 2))).toMatch(/^3 \/ 3\.5 \/ 4 .*on 2 cores: LOADED/);
  });
});

describe("startLoadSampler", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("samples on its interval and summarises a stretch between two marks", () => {
    vi.useFakeTimers();
    const readings = [0.1, 0.2, 3, 4, 5, 0.3, 0.4];
    let i = 0;
    const sampler = startLoadSampler({ intervalMs: 1000, cpuCount: 2, read: () => readings[i++]! });
    vi.advanceTimersByTime(1000); // 0.2
    const from = sampler.mark(); // 3
    vi.advanceTimersByTime(2000); // 4, 5
    const to = sampler.mark(); // 0.3
    expect(sampler.values(from, to)).toEqual([3, 4, 5, 0.3]);
    expect(sampler.summary(from, to)).toMatchObject({ samples: 4, min: 0.3, max: 5, loaded: true });
    const whole = sampler.stop(); // 0.4
    expect(whole).toMatchObject({ cpus: 2, samples: 7, min: 0.1, median: 0.4, max: 5 });
    vi.advanceTimersByTime(5000);
    expect(sampler.values()).toHaveLength(7);
  });
});
