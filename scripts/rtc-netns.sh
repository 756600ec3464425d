#!/usr/bin/env bash
# Runs a command inside a private network namespace where two headless Chromiums can open WebRTC data
# channels to each other with no STUN server and no traffic leaving the machine (../shared/TOOLCHAIN.md,
# "WebRTC between two headless Chromium instances"). With only loopback, Chromium gathers no ICE
# candidate at all; it needs a real interface that is up and a default route. This kernel has no dummy
# interface driver, so a veth pair stands in: both ends up, an address, a route to nowhere.
#
# Needs root (or CAP_SYS_ADMIN) for `unshare --net`. Exits 77 without running anything when the
# namespace cannot be made, so callers can tell "skipped" from "failed".
#
#   scripts/rtc-netns.sh npx playwright test -c e2e/playwright.config.ts e2e/webrtc.spec.ts
set -euo pipefail
if [[ $# -eq 0 ]]; then
  echo "usage: $0 command [args...]" >&2
  exit 2
fi
if ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
  echo "rtc-netns: unshare or ip is missing (util-linux, iproute2)" >&2
  exit 77
fi
if ! unshare --net --fork -- true 2>/dev/null; then
  echo "rtc-netns: cannot create a network namespace here (needs root / CAP_SYS_ADMIN)" >&2
  exit 77
fi
# The spec checks this to know it runs where data channels can open.
export SHOAL_RTC_NETNS=1
exec unshare --net --fork -- bash -c '
  set -e
  ip link set lo up
  ip link add veth0 type veth peer name veth1
  ip addr add 10.77.0.1/24 dev veth0
  ip link set veth0 up
  ip link set veth1 up
  ip route add default via 10.77.0.254 dev veth0
  exec "$@"' rtc-netns "$@"
