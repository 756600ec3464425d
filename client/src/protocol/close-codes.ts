/**
 * WebSocket close codes a Shoal endpoint uses (RFC 6455 section 7.4.1), so a client can tell a
 * retryable close (going away, internal) from one that will repeat if it reconnects unchanged.
 *
 * @example
 * ws.onclose = (e) => { if (e.code === CLOSE_CODES.protocolError) reportBug(e.reason); else retryLater(); };
 */
export const CLOSE_CODES = Object.freeze({
  /** Normal close, e.g. after an idle timeout. */
  normal: 1000,
  /** The relay is shutting down or restarting: reconnect with backoff. */
  goingAway: 1001,
  /** A frame broke the protocol (an `error` frame with code `protocol` or `version` precedes it). */
  protocolError: 1002,
  /** A text frame: only binary frames are allowed. */
  unsupportedData: 1003,
  /** Policy: rate limit, slow reader, missing hello. */
  policyViolation: 1008,
  /** A frame exceeded the size limit. */
  messageTooBig: 1009,
  /** The relay failed internally (e.g. its store). */
  internalError: 1011,
});
