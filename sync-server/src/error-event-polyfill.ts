/**
 * Node 20 has no global `ErrorEvent` (https://developer.mozilla.org/en-US/docs/Web/API/ErrorEvent),
 * but @hono/node-ws 1.3 constructs one when a socket errors (for example when a frame exceeds
 * `maxPayload`); without this the error surfaces as a ReferenceError instead of reaching `onError`.
 * Browsers and newer Node versions define it, and then this does nothing.
 *
 * @example
 * import "./error-event-polyfill.ts"; // before serving WebSockets
 */
export function installErrorEventPolyfill(): void {
  if (typeof globalThis.ErrorEvent !== "undefined") return;
  class ErrorEventPolyfill extends Event {
    readonly error: unknown;
    readonly message: string;
    constructor(type: string, init: { error?: unknown; message?: string } & EventInit = {}) {
      super(type, init);
      this.error = init.error;
      this.message = init.message ?? (init.error instanceof Error ? init.error.message : "");
    }
  }
  (globalThis as { ErrorEvent?: unknown }).ErrorEvent = ErrorEventPolyfill;
}

installErrorEventPolyfill();
