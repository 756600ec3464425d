import { afterEach, beforeEach, describe, it } from "vitest";
import type { Transport } from "../transports/transport.ts";
import { transportContractCases, type TransportContractContext } from "./transport-contract-cases.ts";

/** What one contract case runs against: a transport wired to a fresh relay. */
export interface TransportContractSetup extends TransportContractContext {
  transport: Transport;
  /** Releases the relay and anything else `setup` started. */
  teardown(): Promise<void>;
}

/**
 * The cases every `Transport` adapter must pass (`transportContractCases`, which a browser page can
 * run as well), as one vitest `describe` run against a real relay session (in-process or a relay
 * process). `setup` runs before each case; the relay it starts must allow a burst of more than 200
 * frames per connection (the relay's default burst is exactly 200: pass a higher rate).
 *
 * @example
 * runTransportContract("memory transport", async () => {
 *   const relay = inProcessRelay({ limits: { messagesPerSecond: 1000, messageBurst: 2000 } });
 *   return {
 *     transport: memoryTransport(relay.accept),
 *     dropConnections: async () => relay.disconnectAll(),
 *     teardown: () => relay.close(),
 *   };
 * });
 */
export function runTransportContract(name: string, setup: () => Promise<TransportContractSetup>): void {
  describe(`transport contract: ${name}`, () => {
    let t: TransportContractSetup;
    beforeEach(async () => {
      t = await setup();
    });
    afterEach(async () => {
      await t.teardown();
    });

    for (const c of transportContractCases) {
      // Whether a case applies is known only once `setup` ran, so the skip is decided inside the test.
      it(c.name, async (test) => {
        if (c.needsTokenCheck && t.checksTokens === false)
          return test.skip("the server side checks no token");
        await c.run(t);
      });
    }
  });
}
