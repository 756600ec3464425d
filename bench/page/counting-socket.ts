// Counts the bytes of every WebSocket frame the page sends and receives. Installed over
// `globalThis.WebSocket` when this module is evaluated, which main.ts makes the first import: some
// libraries capture the global at their own evaluation (isomorphic-ws does). That way Shoal's transport and automerge-repo's
// adapter are measured the same way (payload bytes, without WebSocket framing or TCP overhead).

export const traffic = { sent: 0, received: 0 };

/**
 * The frames since the last reset, as [ms since the reset, bytes, "s" sent | "r" received], at most
 * the first 20,000: where a step's wall time goes between its frames (`bench:profile --step upload`).
 */
export const frameLog: [number, number, "s" | "r"][] = [];
let resetAt = performance.now();

/** Zeroes the counters; returns what they held. */
export function resetTraffic(): { sent: number; received: number } {
  const before = { ...traffic };
  traffic.sent = 0;
  traffic.received = 0;
  frameLog.length = 0;
  resetAt = performance.now();
  return before;
}

function logFrame(bytes: number, dir: "s" | "r"): void {
  if (frameLog.length < 20_000) frameLog.push([performance.now() - resetAt, bytes, dir]);
}

function sizeOf(data: unknown): number {
  if (typeof data === "string") return new TextEncoder().encode(data).byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (data instanceof Blob) return data.size;
  return 0;
}

export function installCountingWebSocket(): void {
  const Native = globalThis.WebSocket;
  if ((Native as unknown as { counting?: boolean }).counting) return;
  class CountingWebSocket extends Native {
    static counting = true;
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      this.addEventListener("message", (event) => {
        const n = sizeOf(event.data);
        traffic.received += n;
        logFrame(n, "r");
      });
    }
    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      const n = sizeOf(data);
      traffic.sent += n;
      logFrame(n, "s");
      super.send(data as Parameters<WebSocket["send"]>[0]);
    }
  }
  globalThis.WebSocket = CountingWebSocket;
}

installCountingWebSocket();
