import type { VersionVector } from "@shoal/client";
import { useLiveQuery, useSyncStatus } from "@shoal/client/react";
import type { ClinicDatabase } from "./db.ts";
import { ClaimedTime } from "./claimed-time.tsx";
import { formatBytes, formatTime } from "./format.ts";

/** Commits listed per device: the last few of each, merged by time. */
const LAST_PER_DEVICE = 5;
const SHOWN_COMMITS = 12;

/** The vector a replica would have if it lacked only each device's last few commits. */
function fewBefore(vector: VersionVector): VersionVector {
  const since: VersionVector = {};
  for (const [space, devices] of Object.entries(vector)) {
    since[space] = Object.fromEntries(
      Object.entries(devices).map(([d, seq]) => [d, Math.max(0, seq - LAST_PER_DEVICE)]),
    );
  }
  return since;
}

/**
 * For people evaluating Shoal: this device's id, its spaces and version vectors, the last commits with
 * their sizes (Automerge change bytes, before sealing), and the connections. All read through the
 * public API, live.
 */
export function DevtoolsPanel({ db, onClose }: { db: ClinicDatabase; onClose(): void }) {
  const status = useSyncStatus(db);
  const data = useLiveQuery(async () => {
    const [spaces, vector] = await Promise.all([db.spaces(), db.vector()]);
    const commits = await db.exportCommits(fewBefore(vector));
    const last = commits
      .sort((a, b) => b.at - a.at)
      .slice(0, SHOWN_COMMITS)
      .map((c) => ({
        id: c.id,
        at: c.at,
        device: c.device,
        space: c.space,
        records: c.changes.length,
        bytes: c.changes.reduce((n, rc) => n + rc.changes.reduce((m, ch) => m + ch.byteLength, 0), 0),
      }));
    return { spaces, vector, last };
  }, [db]);

  return (
    <aside className="devtools" aria-label="Devtools">
      <div className="devtools-header">
        <h2>Devtools</h2>
        <button type="button" className="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      <dl className="facts">
        <dt>Device id</dt>
        <dd>
          <code data-testid="device-id">{db.deviceId}</code>
        </dd>
        <dt>Storage</dt>
        <dd>{db.persisted ? "persistent" : "best effort"}</dd>
      </dl>
      <h3>Connections</h3>
      <ul className="plain">
        {status.transports.length === 0 && <li>none</li>}
        {status.transports.map((t) => (
          <li key={`${t.kind}-${t.space}`}>
            {t.kind} · space <code>{t.space.slice(0, 8)}</code> · <strong>{t.state}</strong>
            {t.lastSyncedAt ? ` · synced ${formatTime(t.lastSyncedAt)}` : ""}
          </li>
        ))}
      </ul>
      {data && (
        <>
          <h3>Spaces and version vectors</h3>
          <ul className="plain">
            {data.spaces.map((s) => (
              <li key={s.id}>
                <strong>{s.private ? "Private space" : s.name}</strong> <code>{s.id.slice(0, 8)}</code>
                <ul className="plain vector">
                  {Object.entries(data.vector[s.id] ?? {}).map(([device, seq]) => (
                    <li key={device}>
                      <code>{device.slice(0, 8)}</code>
                      {device === db.deviceId ? " (this device)" : ""}: {seq}
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
          <h3>Last commits</h3>
          <table className="commits">
            <thead>
              <tr>
                <th scope="col">Commit</th>
                <th scope="col">Time</th>
                <th scope="col">Records</th>
                <th scope="col">Size</th>
              </tr>
            </thead>
            <tbody>
              {data.last.map((c) => (
                <tr key={c.id}>
                  <td>
                    <code title={c.id}>
                      {c.device.slice(0, 6)}…#{c.id.split(".").at(-1)}
                    </code>
                  </td>
                  <td>
                    <ClaimedTime at={c.at} style="time" />
                  </td>
                  <td>{c.records}</td>
                  <td>{formatBytes(c.bytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </aside>
  );
}
