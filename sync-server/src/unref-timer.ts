/** The timer, made not to keep the process alive on its own (Node); a no-op where timers have no `unref`. */
export function unrefTimer<T>(t: T): T {
  (t as { unref?: () => void }).unref?.();
  return t;
}
