import { useLiveQuery } from "@shoal/client/react";
import { useState } from "react";
import { AppHeader } from "./app-header.tsx";
import { BundleActions } from "./bundle-actions.tsx";
import type { ClinicDatabase } from "./db.ts";
import { DevtoolsPanel } from "./devtools-panel.tsx";
import { ErrorBoundary } from "./error-boundary.tsx";
import { FirstRun } from "./first-run.tsx";
import { loadActiveClinic, loadDeviceName, saveActiveClinic, saveDeviceName } from "./local-settings.ts";
import { PatientListPage } from "./patient-list-page.tsx";
import { PatientPage } from "./patient-page.tsx";
import { StaffPage } from "./staff-page.tsx";
import { StockPage } from "./stock-page.tsx";
import { StatusBar } from "./status-bar.tsx";
import { AccessBanner } from "./access-banner.tsx";
import { LeaveDialog } from "./leave-dialog.tsx";
import { LeaveOutcomeNotice, type LeaveOutcome } from "./leave-outcome-notice.tsx";
import { leaveInvitation, useRoute } from "./use-route.ts";
import { useSeeder } from "./use-seeder.ts";

/**
 * The clinic app: first run until this device has a name and a clinic, then the patient list or a
 * patient's page, with the status bar always at the bottom and the devtools panel on demand.
 */
export function App({ db, syncProblem = null }: { db: ClinicDatabase; syncProblem?: string | null }) {
  const route = useRoute();
  const spaces = useLiveQuery(() => db.spaces(), [db]);
  const [deviceName, setDeviceName] = useState(loadDeviceName);
  const [activeId, setActiveId] = useState(loadActiveClinic);
  const [leaving, setLeaving] = useState(false);
  // Kept here, not in the dialog: leaving the last clinic replaces the whole shell with the first run.
  const [leftForGood, setLeftForGood] = useState<LeaveOutcome | null>(null);
  const [devtools, setDevtools] = useState(false);
  const seeder = useSeeder(db);

  if (spaces === undefined) return <p className="loading">Opening the local database…</p>;
  const clinics = spaces.filter((s) => !s.private);
  const leaveNotice = leftForGood && (
    <LeaveOutcomeNotice outcome={leftForGood} onDismiss={() => setLeftForGood(null)} />
  );

  if (route.page === "join" || !deviceName || clinics.length === 0) {
    return (
      <>
        {leaveNotice}
        <FirstRun
          // A link opened in a first-run page that is already showing (after leaving the last clinic, say)
          // starts it afresh with that link filled in.
          key={route.page === "join" ? route.link : "no-invitation"}
          db={db}
          invitation={route.page === "join" ? route.link : null}
          deviceName={deviceName}
          onReady={(name, clinicId) => {
            saveDeviceName(name);
            saveActiveClinic(clinicId);
            setDeviceName(name);
            setActiveId(clinicId);
            setLeftForGood(null);
            leaveInvitation();
          }}
        />
      </>
    );
  }

  const clinic = clinics.find((c) => c.id === activeId) ?? clinics[0]!;
  return (
    <div className="shell">
      <AppHeader
        clinic={clinic}
        clinics={clinics}
        deviceName={deviceName}
        devtools={devtools}
        onSwitchClinic={(id) => {
          saveActiveClinic(id);
          setActiveId(id);
        }}
        onLeave={() => setLeaving(true)}
        onToggleDevtools={() => setDevtools((on) => !on)}
        actions={<BundleActions db={db} clinic={clinic} />}
      />
      <AccessBanner db={db} clinic={clinic} />
      {leaveNotice}
      <div className="workspace">
        <main className="content">
          <ErrorBoundary
            key={`${clinic.id}/${route.page}/${route.page === "patient" ? route.id : ""}`}
            what={
              route.page === "patient"
                ? "this patient"
                : route.page === "staff"
                  ? "the staff"
                  : route.page === "stock"
                    ? "the vaccine stock"
                    : "the patient list"
            }
          >
            {route.page === "staff" ? (
              <StaffPage db={db} clinic={clinic} deviceName={deviceName} />
            ) : route.page === "stock" ? (
              <StockPage db={db} clinicId={clinic.id} />
            ) : route.page === "patient" ? (
              <PatientPage db={db} clinicId={clinic.id} deviceName={deviceName} id={route.id} />
            ) : (
              <PatientListPage db={db} clinicId={clinic.id} seeder={seeder} />
            )}
          </ErrorBoundary>
        </main>
        {devtools && (
          <ErrorBoundary what="the devtools">
            <DevtoolsPanel db={db} onClose={() => setDevtools(false)} />
          </ErrorBoundary>
        )}
      </div>
      <StatusBar
        db={db}
        clinicId={clinic.id}
        clinicName={clinic.name}
        seeder={seeder}
        syncProblem={syncProblem}
      />
      {leaving && (
        <LeaveDialog
          db={db}
          clinic={clinic}
          onClose={() => setLeaving(false)}
          onLeft={(outcome) => {
            setLeaving(false);
            setLeftForGood(outcome ?? null);
            // The next clinic of this device, or the first-run screen when none is left.
            location.hash = "#/";
          }}
        />
      )}
    </div>
  );
}
