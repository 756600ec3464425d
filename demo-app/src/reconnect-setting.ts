const SETTING = "shoal-clinic.retrySeconds";
/** The longest wait this setting accepts: the client's own default ceiling (README, `db.sync`). */
const MAX_SECONDS = 30;

/**
 * The reconnect backoff this browser asked for with `?retry=<seconds>` in the address (remembered from
 * then on, like `?pin`; `?retry=off` goes back to the default), or undefined for the client's default
 * (250 ms doubling to 30 s). A shorter ceiling suits a demo on a desk where the relay is restarted on
 * purpose: the devices find it again within that many seconds instead of up to half a minute. Values
 * that are not a number from 1 to 30 are ignored, so a mistyped address never stops sync.
 */
export function reconnectBackoff(): { baseMs: number; maxMs: number } | undefined {
  const asked = new URLSearchParams(location.search).get("retry");
  let seconds: string | null = asked;
  try {
    if (asked === "off") localStorage.removeItem(SETTING);
    else if (asked !== null && validSeconds(asked) !== undefined) localStorage.setItem(SETTING, asked);
    seconds = localStorage.getItem(SETTING);
  } catch {
    // Storage disabled by policy: the address alone decides, for this page.
  }
  const maxSeconds = seconds === null ? undefined : validSeconds(seconds);
  return maxSeconds === undefined ? undefined : { baseMs: 250, maxMs: maxSeconds * 1000 };
}

/** Plain digits only: `Number` would also take "1e1", " 2" or "0x1f". */
function validSeconds(text: string): number | undefined {
  if (!/^\d{1,2}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= MAX_SECONDS ? n : undefined;
}
