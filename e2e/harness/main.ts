// The page Playwright specs drive: the real library, built by Vite exactly as an app would build it,
// exposed on window so that `page.evaluate` can call it in real Chromium with real IndexedDB.
import * as client from "@shoal/client";
import * as testing from "@shoal/client/testing";
import {
  relayLikeResponder,
  transportContractCases,
} from "../../client/src/testing/transport-contract-cases.ts";
import { openDataChannelLink, webRtcTransport } from "../../client/src/transports/webrtc-transport.ts";

/**
 * What e2e/webrtc-contract.spec.ts needs in the page to run the transport contract over real data
 * channels; imported by path because neither the cases nor the WebRTC adapter are public exports.
 */
const transportContract = {
  cases: transportContractCases,
  relayLikeResponder,
  openDataChannelLink,
  webRtcTransport,
};

declare global {
  interface Window {
    __shoalTransportContract: typeof transportContract;
  }
}

window.__shoal = { client, testing };
window.__shoalTransportContract = transportContract;
window.__shoalReady = true;
