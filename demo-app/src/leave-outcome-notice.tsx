/** How leaving a clinic for good went (`db.leave(space, { announce: true })`). */
export interface LeaveOutcome {
  clinicName: string;
  /** Whether the relay took this device's removal before its data was deleted. */
  announced: boolean;
}

/**
 * Says how leaving a clinic for good went, after the clinic (and the dialog that left it) is gone from
 * this device: either the others were told, or this device is still on their staff list until an admin
 * removes it (its own removal was deleted with the clinic before the relay had it).
 */
export function LeaveOutcomeNotice({ outcome, onDismiss }: { outcome: LeaveOutcome; onDismiss(): void }) {
  return (
    <div
      role="status"
      className={`access-banner leave-outcome${outcome.announced ? "" : " warning"}`}
      data-testid="leave-outcome"
      data-announced={outcome.announced}
    >
      <p>
        {outcome.announced
          ? `This device left ${outcome.clinicName} for good. The others were told: their staff list no longer shows it.`
          : `This device left ${outcome.clinicName} for good, but could not reach the relay: the others still list this device until an admin removes it.`}
      </p>
      <button type="button" className="secondary" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
