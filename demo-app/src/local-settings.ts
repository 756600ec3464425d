/**
 * Settings of this browser that are not shared data: the device's display name and the clinic shown.
 * localStorage is per origin like IndexedDB, so every tab of this device sees the same values, while
 * another browser profile (another device) has its own.
 */
const PREFIX = "shoal-clinic.";

function read(key: string): string | null {
  try {
    return localStorage.getItem(PREFIX + key);
  } catch {
    // Storage can be disabled by policy; the app then asks again on every load instead of failing.
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    localStorage.setItem(PREFIX + key, value);
  } catch {
    // See `read`: without storage the value lives only for this page.
  }
}

/** The name this device shows to others (e.g. "Reception desk"), or null before first run. */
export function loadDeviceName(): string | null {
  return read("deviceName");
}

export function saveDeviceName(name: string): void {
  write("deviceName", name);
}

/** The clinic (space id) this device shows, or null to pick the first one. */
export function loadActiveClinic(): string | null {
  return read("activeClinic");
}

export function saveActiveClinic(spaceId: string): void {
  write("activeClinic", spaceId);
}
