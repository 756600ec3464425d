// The transport contract (client/src/testing/transport-contract-cases.ts) over real WebRTC data
// channels between two Chromium processes: in browser A every `connect` of the transport under test
// opens a new data channel on one peer connection and hands it to `webRtcTransport`; browser B plays
// the server side, answering each channel like a relay session (hello -> welcome, ping -> pong) through
// `openDataChannelLink`. "The server goes away" is B closing every channel it answers.
//
// WebRTC needs a network interface besides loopback to gather any ICE candidate, so this spec only runs
// inside the private network namespace made by scripts/rtc-netns.sh (npm test runs it there when root).
import { chromium, expect, test, type Browser, type Page } from "@playwright/test";
import type { TransportContractContext } from "../client/src/testing/transport-contract-cases.ts";
import { transportContractCases } from "../client/src/testing/transport-contract-cases.ts";
import type {
  Transport,
  TransportConnection,
  TransportHandlers,
} from "../client/src/transports/transport.ts";
import { CHROMIUM_ARGS, chromiumExecutable } from "../scripts/chromium.mjs";
import { HARNESS_PATH } from "./support/harness.ts";
import { collectPageErrors } from "./support/page-errors.ts";
import { netnsSkipReason } from "./support/netns.ts";

/** Label of the channels the transport under test opens; B answers only those. */
const CONTRACT_LABEL = "shoal.contract";
/** Bound of each signalling step (ICE gathering, the bootstrap channel opening). */
const SIGNAL_MS = 15_000;

/** What the pages keep on window between `page.evaluate` calls. */
interface ContractPageState {
  pc: RTCPeerConnection;
  /** B: the links it answers, closed all at once by `drop`. */
  links?: Set<TransportConnection>;
  /** A: runs one contract case by name. */
  run?(name: string): Promise<void>;
}
type ContractWindow = Window & { __contract: ContractPageState; __contractDrop(): Promise<void> };

/** Both pages' code bound its waits with this; passed in because evaluated functions see no closure. */
function gatheredSdp(pc: RTCPeerConnection, ms: number): Promise<RTCSessionDescriptionInit> {
  return new Promise((resolve, reject) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      clearTimeout(timer);
      resolve(pc.localDescription!.toJSON() as RTCSessionDescriptionInit);
    };
    const timer = setTimeout(
      () => reject(new Error(`ICE gathering not complete after ${ms} ms (${pc.iceGatheringState})`)),
      ms,
    );
    pc.addEventListener("icegatheringstatechange", done);
    done();
  });
}

async function openHarness(browser: Browser, origin: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ baseURL: origin });
  // The same helper in both pages, defined before the harness runs so evaluated code can call it.
  await context.addInitScript(`window.__gatheredSdp = ${gatheredSdp.toString()};`);
  const page = await context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(HARNESS_PATH);
  await page.waitForFunction(() => window.__shoalReady === true);
  return { page, errors };
}

type Gather = (pc: RTCPeerConnection, ms: number) => Promise<RTCSessionDescriptionInit>;

test.describe("transport contract over WebRTC between two Chromium processes", () => {
  const reason = netnsSkipReason("webrtc-contract.spec.ts");
  test.skip(reason !== undefined, reason ?? "");
  test.describe.configure({ mode: "serial" });

  let browsers: Browser[] = [];
  let a: { page: Page; errors: string[] };
  let b: { page: Page; errors: string[] };

  test.beforeAll(async () => {
    test.setTimeout(120_000);
    const origin = process.env.SHOAL_E2E_URL;
    if (!origin) throw new Error("SHOAL_E2E_URL is not set: the Playwright webServer did not start");
    const launch = () => chromium.launch({ executablePath: chromiumExecutable(), args: [...CHROMIUM_ARGS] });
    // Two browser processes: nothing shared but the network namespace, as between two devices.
    browsers = [await launch(), await launch()];
    a = await openHarness(browsers[0]!, origin);
    b = await openHarness(browsers[1]!, origin);

    // B answers every contract channel A opens, like a relay session answers a socket.
    await b.page.evaluate((label) => {
      const w = window as unknown as ContractWindow;
      const { openDataChannelLink, relayLikeResponder } = window.__shoalTransportContract;
      const pc = new RTCPeerConnection({ iceServers: [] });
      const links = new Set<TransportConnection>();
      pc.addEventListener("datachannel", (event) => {
        if (event.channel.label !== label) return;
        const link = openDataChannelLink(event.channel, {
          onOpen: () => {},
          onMessage: (frame) => answer(frame),
          onClose: () => links.delete(link),
        });
        const answer = relayLikeResponder((frame) => link.send(frame));
        links.add(link);
      });
      w.__contract = { pc, links };
    }, CONTRACT_LABEL);

    // Non-trickle signalling through this process: one offer and one answer, candidates inside.
    const offer = await a.page.evaluate(async (ms) => {
      const w = window as unknown as ContractWindow & { __gatheredSdp: Gather };
      const pc = new RTCPeerConnection({ iceServers: [] });
      // A channel that stays open for the whole run, so the SCTP association exists before any case
      // and each `connect` only adds a stream, with no renegotiation.
      pc.createDataChannel("bootstrap");
      await pc.setLocalDescription(await pc.createOffer());
      w.__contract = { pc };
      return w.__gatheredSdp(pc, ms);
    }, SIGNAL_MS);
    const answer = await b.page.evaluate(
      async ([offer, ms]) => {
        const w = window as unknown as ContractWindow & { __gatheredSdp: Gather };
        const pc = w.__contract.pc;
        await pc.setRemoteDescription(offer);
        await pc.setLocalDescription(await pc.createAnswer());
        return w.__gatheredSdp(pc, ms);
      },
      [offer, SIGNAL_MS] as const,
    );

    // "The server goes away", asked from inside A's case, is carried out in B.
    await a.page.exposeFunction("__contractDrop", async () => {
      await b.page.evaluate(() => {
        const links = (window as unknown as ContractWindow).__contract.links!;
        for (const link of [...links]) link.close("peer going away");
      });
    });

    await a.page.evaluate(
      async ([answer, label, ms]) => {
        const w = window as unknown as ContractWindow;
        const { cases, webRtcTransport } = window.__shoalTransportContract;
        const pc = w.__contract.pc;
        await pc.setRemoteDescription(answer);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no connection after ${ms} ms`)), ms);
          const check = () => {
            if (pc.connectionState === "connected") {
              clearTimeout(timer);
              resolve();
            } else if (pc.connectionState === "failed") {
              clearTimeout(timer);
              reject(new Error("peer connection failed"));
            }
          };
          pc.addEventListener("connectionstatechange", check);
          check();
        });
        // Each `connect` is a new channel and a new `webRtcTransport`, as the engine's owner of a peer
        // connection does after a link closed (one transport wraps one channel for good).
        const transport: Transport = {
          kind: "webrtc",
          label: "peer-b",
          connect: (space, token, handlers: TransportHandlers) =>
            webRtcTransport({ channel: pc.createDataChannel(label), peer: "peer-b" }).connect(
              space,
              token,
              handlers,
            ),
        };
        const ctx: TransportContractContext = {
          transport,
          dropConnections: () => w.__contractDrop(),
          // A peer link carries no token: the peer got this far by opening our sealed signals.
          checksTokens: false,
        };
        w.__contract.run = async (name) => {
          const c = cases.find((x) => x.name === name);
          if (!c) throw new Error(`no contract case named ${name}`);
          await c.run(ctx);
        };
      },
      [answer, CONTRACT_LABEL, SIGNAL_MS] as const,
    );
  });

  test.afterAll(async () => {
    await Promise.all(browsers.map((br) => br.close()));
  });

  for (const c of transportContractCases) {
    test(c.name, async () => {
      test.skip(c.needsTokenCheck === true, "a WebRTC peer link carries no token, so nothing refuses one");
      await a.page.evaluate((name) => (window as unknown as ContractWindow).__contract.run!(name), c.name);
      expect([...a.errors, ...b.errors]).toEqual([]);
    });
  }
});
