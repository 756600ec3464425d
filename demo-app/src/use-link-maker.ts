import { useState } from "react";

/** What `useLinkMaker` returns. */
export interface LinkMaker {
  /** The link made last; null before the first and after a failure (a stale link must not be shared). */
  link: string | null;
  /** Why making the last one failed, for `RefusalMessage`. */
  error: unknown;
  /** Whether one is being made: its button waits meanwhile. */
  busy: boolean;
  make(work: () => Promise<string>): Promise<void>;
}

/**
 * The state of a panel that makes a link with one action (an invitation, a link for another device of
 * one's own, a recovery key).
 *
 * @example
 * const { link, error, busy, make } = useLinkMaker();
 * <button disabled={busy} onClick={() => void make(() => db.linkDevice(clinic))}>Link</button>
 */
export function useLinkMaker(): LinkMaker {
  const [link, setLink] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function make(work: () => Promise<string>) {
    setBusy(true);
    setError(null);
    try {
      setLink(await work());
    } catch (e) {
      setError(e);
      setLink(null);
    } finally {
      setBusy(false);
    }
  }

  return { link, error, busy, make };
}
