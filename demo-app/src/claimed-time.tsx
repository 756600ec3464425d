import { formatDateTime, formatTime } from "./format.ts";

/** Earliest time shown as a date: before this, a commit's time is certainly a wrong clock or a lie. */
const EARLIEST = Date.UTC(2000, 0, 1);
/** How far ahead of this device's clock a time may be and still be shown as a date (clock skew). */
const AHEAD = 366 * 24 * 60 * 60 * 1000;

/**
 * A commit's time as its author claims it: a time only that device's clock vouches for, which another
 * device may set to anything (2^63 ms, a negative number, a string). Plausible times are formatted;
 * anything else is shown as `claimed: <raw value>` rather than thrown on (`new Date(2 ** 63)` is an
 * invalid date, and formatting it throws a RangeError).
 *
 * @example
 * claimedTime(Date.now()).date; // a Date
 * claimedTime(2 ** 63).label;   // "claimed: 9223372036854776000"
 */
export function claimedTime(at: unknown, now = Date.now()): { date: Date | null; label: string } {
  if (typeof at === "number" && Number.isFinite(at) && at >= EARLIEST && at <= now + AHEAD) {
    const date = new Date(at);
    if (!Number.isNaN(date.getTime())) return { date, label: "" };
  }
  let raw: string;
  try {
    raw = typeof at === "string" ? JSON.stringify(at) : String(at);
  } catch {
    raw = "?";
  }
  return { date: null, label: `claimed: ${raw.length > 40 ? `${raw.slice(0, 40)}…` : raw}` };
}

/** Renders a claimed commit time: a `<time>` when plausible, else the raw claim, marked as such. */
export function ClaimedTime({ at, style = "dateTime" }: { at: unknown; style?: "dateTime" | "time" }) {
  const { date, label } = claimedTime(at);
  if (!date) {
    return (
      <span
        className="claimed-time"
        title="This time is implausible: the device that made the change claims it."
      >
        {label}
      </span>
    );
  }
  return (
    <time dateTime={date.toISOString()}>
      {style === "time" ? formatTime(date.getTime()) : formatDateTime(date.getTime())}
    </time>
  );
}
