// Issue 15, item 2: is the main thread free while records arrive? Two of the browser's own measures,
// taken while a step runs: the Long Tasks API (every task over 50 ms, with its length) and the Event
// Timing API (for each real key press scripts/bench.mjs types into the page's search box, the delay
// before its handler ran and the time until the next frame could paint). The box runs a Shoal query per
// key, as the demo's search does, so a key's full time includes reading the replica while it fills.

/** What the page saw while watching. */
export interface Responsiveness {
  /** Tasks of 50 ms or more. */
  longTasks: number;
  /** The longest task (ms); 0 when none reached 50 ms. */
  longestTaskMs: number;
  /** Key presses measured. */
  keys: number;
  /** The longest delay from a key press to its handler (ms), and the longest press to next paint. */
  maxInputDelayMs: number;
  maxKeyToPaintMs: number;
  /** The longest time from a key press to its search results (a Shoal query) being in the page. */
  maxKeyToResultsMs: number;
}

/**
 * Starts watching; the returned function stops and reports. `search(text)` is what the box runs on
 * each key (its result count is written into the page).
 */
export function watchResponsiveness(search: (text: string) => Promise<number>): () => Responsiveness {
  const out: Responsiveness = {
    longTasks: 0,
    longestTaskMs: 0,
    keys: 0,
    maxInputDelayMs: 0,
    maxKeyToPaintMs: 0,
    maxKeyToResultsMs: 0,
  };
  const tasks = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      out.longTasks++;
      out.longestTaskMs = Math.max(out.longestTaskMs, e.duration);
    }
  });
  tasks.observe({ type: "longtask", buffered: false });
  const events = new PerformanceObserver((list) => {
    for (const e of list.getEntries() as PerformanceEventTiming[]) {
      if (e.name !== "keydown") continue;
      out.maxInputDelayMs = Math.max(out.maxInputDelayMs, e.processingStart - e.startTime);
      out.maxKeyToPaintMs = Math.max(out.maxKeyToPaintMs, e.duration);
    }
  });
  // 16 ms is the smallest threshold the API allows; shorter events are fast enough not to matter.
  events.observe({ type: "event", durationThreshold: 16, buffered: false } as PerformanceObserverInit);
  const box = document.createElement("input");
  box.id = "bench-search";
  const shown = document.createElement("output");
  document.body.append(box, shown);
  const onKey = (e: KeyboardEvent): void => {
    out.keys++;
    // The key's own time stamp is when the browser received it, before any queueing on this thread.
    const pressed = e.timeStamp;
    queueMicrotask(() => {
      void search(box.value).then((count) => {
        shown.value = String(count);
        out.maxKeyToResultsMs = Math.max(out.maxKeyToResultsMs, performance.now() - pressed);
      });
    });
  };
  box.addEventListener("keydown", onKey);
  return () => {
    tasks.disconnect();
    events.disconnect();
    box.removeEventListener("keydown", onKey);
    box.remove();
    shown.remove();
    return out;
  };
}
