// What the harness page puts on window; specs read it inside `page.evaluate` callbacks.
type ShoalClient = typeof import("@shoal/client");
type ShoalTesting = typeof import("@shoal/client/testing");

declare global {
  interface Window {
    __shoal: { client: ShoalClient; testing: ShoalTesting };
    /** Set once the harness module has run, i.e. the library (and Automerge's wasm) loaded. */
    __shoalReady?: boolean;
    /** Scratch space for specs that record results in the page (e.g. live query emissions). */
    __e2e?: Record<string, unknown>;
  }
}

export {};
