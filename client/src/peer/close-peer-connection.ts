import type { PeerLink } from "./peer-link.ts";

/** After refusing a peer, how long its channel may take to deliver the refusal and close. */
const REFUSAL_FLUSH_MS = 2_000;
const REFUSAL_POLL_MS = 20;

/**
 * Closes a link's peer connection: at once, or after this device refused the peer, once the data
 * channel has finished closing (within a bound).
 */
export function closePeerConnection(link: PeerLink): void {
  const closePc = () => {
    try {
      link.pc.close();
    } catch {
      // Closing twice is harmless.
    }
  };
  // A closing data channel still sends what it holds (the refusal frame), but closing the peer
  // connection drops it: wait for the channel to finish closing first, within a bound.
  if (link.refusing && link.channel && link.channel.readyState !== "closed") {
    const channel = link.channel;
    const since = Date.now();
    const poll = setInterval(() => {
      if (channel.readyState !== "closed" && Date.now() - since < REFUSAL_FLUSH_MS) return;
      clearInterval(poll);
      closePc();
    }, REFUSAL_POLL_MS);
  } else closePc();
}
