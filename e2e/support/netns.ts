import { spawnSync } from "node:child_process";

/** Set by scripts/rtc-netns.sh: this process runs inside the network namespace it created. */
const IN_NETNS = process.env.SHOAL_RTC_NETNS === "1";

/**
 * Why a WebRTC spec does not run here, or undefined when it can: with loopback alone Chromium gathers no
 * ICE candidate, so the specs run only inside the namespace `scripts/rtc-netns.sh` makes (as root).
 */
export function netnsSkipReason(spec: string): string | undefined {
  if (IN_NETNS) return undefined;
  const canUnshare =
    process.getuid?.() === 0 && spawnSync("unshare", ["--net", "--fork", "--", "true"]).status === 0;
  return canUnshare
    ? `runs only inside the network namespace of scripts/rtc-netns.sh (npm test does that as root: \`scripts/rtc-netns.sh npx playwright test -c e2e/playwright.config.ts e2e/${spec}\`)`
    : "cannot create a network namespace here (not root, or no unshare): with loopback alone Chromium gathers no ICE candidate, so no data channel can open. `.ci/run` runs it as root.";
}
