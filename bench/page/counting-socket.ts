// Counts the bytes of every WebSocket frame the page sends and receives. Installed over
// `globalThis.WebSocket` when this module is evaluated, which main.ts makes the first import: some
// libraries capture the global at their own evaluation (isomorphic-ws does). That way Shoal's transport and automerge-repo's
// adapter are measured the same way (payload bytes, without WebSocket framing or TCP overhead).

export const traffic = { sent: 0, received: 0 };

/** Zeroes the counters; returns what they held. */
export function resetTraffic(): { sent: number; received: number } {
  const before = { ...traffic };
  traffic.sent = 0;
  traffic.received = 0;
  return before;
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
        traffic.received += sizeOf(event.data);
      });
    }
    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      traffic.sent += sizeOf(data);
      super.send(data as Parameters<WebSocket["send"]>[0]);
    }
  }
  globalThis.WebSocket = CountingWebSocket;
}

installCountingWebSocket();
