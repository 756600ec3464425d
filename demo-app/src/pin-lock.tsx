import { WrongPassphrase } from "@shoal/client";
import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { flushSync } from "react-dom";
import { openClinicDatabase, type ClinicDatabase } from "./db.ts";

/** The PIN-locked clinic keeps its own database: a lock cannot be added to one that holds data. */
export const LOCKED_DATABASE = "shoal-clinic-locked";
/** Minutes without use after which the clinic locks itself. */
const IDLE_MINUTES = 5;
const SETTING = "shoal-clinic.pinLock";

/**
 * Whether this browser uses the PIN-locked clinic: opt-in, by opening the app once with `?pin` in the
 * address (remembered from then on; `?pin=off` goes back to the clinic without a PIN).
 */
export function pinLockWanted(): boolean {
  const asked = new URLSearchParams(location.search).get("pin");
  try {
    if (asked === "off") localStorage.removeItem(SETTING);
    else if (asked !== null) localStorage.setItem(SETTING, "1");
    return localStorage.getItem(SETTING) === "1";
  } catch {
    return asked !== null && asked !== "off";
  }
}

async function lockedDatabaseExists(): Promise<boolean> {
  const all = await indexedDB.databases?.();
  return all?.some((d) => d.name === LOCKED_DATABASE) ?? false;
}

/** A PIN form: `choose` the first time (asked twice), else enter it. */
function PinForm({ choose, onPin }: { choose: boolean; onPin(pin: string): Promise<void> }) {
  const [pin, setPin] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (choose && pin.length < 4) return setError("Choose a PIN of at least 4 digits.");
    if (choose && pin !== again) return setError("The two PINs differ.");
    setBusy(true);
    setError(null);
    try {
      await onPin(pin);
    } catch (e) {
      setError(e instanceof WrongPassphrase ? "Wrong PIN." : String(e));
      setBusy(false);
    }
  };
  return (
    <form className="card pin-form" onSubmit={(e) => void submit(e)}>
      <h1>{choose ? "Choose a PIN for this device" : "Clinic locked"}</h1>
      <p className="hint">
        {choose
          ? "The clinic's data on this device is encrypted with it. There is no way to recover it if forgotten."
          : "Enter your PIN to open the clinic."}
      </p>
      <label>
        PIN
        <input
          type="password"
          inputMode="numeric"
          autoComplete={choose ? "new-password" : "current-password"}
          autoFocus
          value={pin}
          onChange={(e) => setPin(e.target.value)}
        />
      </label>
      {choose && (
        <label>
          PIN again
          <input
            type="password"
            inputMode="numeric"
            value={again}
            onChange={(e) => setAgain(e.target.value)}
          />
        </label>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <button type="submit" disabled={busy}>
        {busy ? "Opening…" : choose ? "Set PIN" : "Unlock"}
      </button>
    </form>
  );
}

/** Opens the PIN-locked clinic: asks for the PIN (or a new one the first time), then calls `onOpen`. */
export function PinGate({ onOpen }: { onOpen(db: ClinicDatabase): void }) {
  const [exists, setExists] = useState<boolean | null>(null);
  useEffect(() => void lockedDatabaseExists().then(setExists), []);
  if (exists === null) return null;
  return (
    <PinForm
      choose={!exists}
      onPin={async (pin) =>
        onOpen(await openClinicDatabase(LOCKED_DATABASE, { passphrase: pin, idleMinutes: IDLE_MINUTES }))
      }
    />
  );
}

/**
 * The app of the PIN-locked clinic with a Lock button; once locked (the button, or idle time), only the
 * PIN form shows, and unlocking mounts the app afresh (its live queries ended with the lock).
 */
export function LockScreen({ db, children }: { db: ClinicDatabase; children: ReactNode }) {
  const [state, setState] = useState(db.lockState.get());
  useEffect(() => {
    // Rendered at once: the app's live queries are unmounted before the lock makes them fail.
    const sub = db.lockState.subscribe((s) => flushSync(() => setState(s)));
    return () => sub.unsubscribe();
  }, [db]);
  if (state === "locked") return <PinForm choose={false} onPin={(pin) => db.unlock(pin)} />;
  return (
    <>
      <button type="button" className="lock-button" onClick={() => void db.lock()}>
        Lock clinic
      </button>
      {children}
    </>
  );
}
