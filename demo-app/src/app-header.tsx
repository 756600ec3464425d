import type { Space, SpaceId } from "@shoal/client";
import type { ReactNode } from "react";

interface Props {
  clinic: Space;
  clinics: readonly Space[];
  deviceName: string;
  devtools: boolean;
  onSwitchClinic(id: SpaceId): void;
  onLeave(): void;
  onToggleDevtools(): void;
  /** More actions shown before "Staff" (the file export and import). */
  actions?: ReactNode;
}

/** The top bar: which clinic, which device, and the actions that are not about one patient. */
export function AppHeader({
  clinic,
  clinics,
  deviceName,
  devtools,
  onSwitchClinic,
  onLeave,
  onToggleDevtools,
  actions,
}: Props) {
  return (
    <header className="app-header">
      <a className="brand" href="#/">
        Shoal Clinic
      </a>
      {clinics.length > 1 ? (
        <label className="clinic-switch">
          <span className="visually-hidden">Clinic</span>
          <select value={clinic.id} onChange={(e) => onSwitchClinic(e.target.value as SpaceId)}>
            {clinics.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
      ) : (
        <span className="clinic-name" data-testid="clinic-name">
          {clinic.name}
        </span>
      )}
      <span className="device-name" title="This device's name, shown to colleagues">
        {deviceName}
      </span>
      <div className="header-actions">
        {actions}
        <a className="button-link" href="#/stock">
          Stock
        </a>
        <a className="button-link" href="#/staff">
          Staff
        </a>
        <button type="button" className="secondary" onClick={onLeave}>
          Leave clinic
        </button>
        <button type="button" className="secondary" aria-pressed={devtools} onClick={onToggleDevtools}>
          Devtools
        </button>
      </div>
    </header>
  );
}
