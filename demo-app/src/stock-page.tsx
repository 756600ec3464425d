import { InsufficientRights, rightsOfRow, type RecordId, type SpaceId } from "@shoal/client";
import { useLiveQuery } from "@shoal/client/react";
import { useState, type FormEvent } from "react";
import type { ClinicDatabase, Vaccine } from "./db.ts";

type VaccineRow = Vaccine & { id: RecordId };

/** A whole number above 0 typed in a field, or null. */
function amountOf(text: string): number | null {
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/**
 * The vaccine doses of this site (the clinic): each vaccine's stock is a bounded counter that never
 * goes below 0, even when devices administer doses while offline. A device administers only the doses
 * it holds the rights to; administering more is refused at once, and the shortfall is asked of the
 * other devices, which hand it over as soon as both are online. Below, the most administered vaccines,
 * updated live as any device administers.
 */
export function StockPage({ db, clinicId }: { db: ClinicDatabase; clinicId: SpaceId }) {
  const rows = useLiveQuery(
    () => db.stock.where("clinic").equals(clinicId).toArray() as Promise<VaccineRow[]>,
    [db, clinicId],
  );
  const [name, setName] = useState("");
  const [doses, setDoses] = useState("10");
  const [message, setMessage] = useState<string | null>(null);

  async function addVaccine(event: FormEvent) {
    event.preventDefault();
    const n = Number(doses);
    if (!name.trim() || !Number.isSafeInteger(n) || n < 0) return;
    await db.stock.insert(
      { clinic: clinicId, name: name.trim(), doses: n, administered: 0 },
      { space: clinicId },
    );
    setName("");
  }

  /** Runs one stock action, showing its outcome (a refusal says how much is held here and in all). */
  async function act(what: () => Promise<string>) {
    try {
      setMessage(await what());
    } catch (e) {
      if (e instanceof InsufficientRights) {
        setMessage(
          `Refused: this device holds ${e.held} of the ${e.total} doses in stock. ` +
            (e.total >= e.wanted
              ? "The rest is held by other devices; this device asked them for it."
              : "There are not that many left."),
        );
      } else throw e;
    }
  }

  const top = [...(rows ?? [])]
    .filter((r) => r.administered > 0)
    .sort((a, b) => b.administered - a.administered || a.name.localeCompare(b.name))
    .slice(0, 10);

  return (
    <section className="stock-page" aria-labelledby="stock-heading">
      <div className="page-title">
        <h1 id="stock-heading">Vaccine stock</h1>
      </div>
      <p className="hint">
        Each device holds part of the stock. Offline, it can administer only the doses it holds; online,
        devices hand doses to a device that asks.
      </p>
      {message && (
        <p className="notice" role="status" data-testid="stock-message">
          {message}
        </p>
      )}
      {rows === undefined ? (
        <p className="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p className="muted">No vaccines yet.</p>
      ) : (
        <table className="stock-table" aria-label="Vaccines">
          <thead>
            <tr>
              <th>Vaccine</th>
              <th>In stock</th>
              <th>Held by this device</th>
              <th>Doses</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <StockLine key={row.id} db={db} row={row} act={act} />
            ))}
          </tbody>
        </table>
      )}
      <form className="inline-form" onSubmit={(e) => void addVaccine(e)}>
        <label>
          Vaccine <input value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. MMR" />
        </label>
        <label>
          Doses <input value={doses} onChange={(e) => setDoses(e.target.value)} inputMode="numeric" />
        </label>
        <button type="submit">Add vaccine</button>
      </form>
      <h2 id="top-heading">Most administered</h2>
      <ol className="leaderboard" aria-labelledby="top-heading">
        {top.map((r) => (
          <li key={r.id} data-testid="top-vaccine">
            {r.name}: {r.administered}
          </li>
        ))}
      </ol>
    </section>
  );
}

/** One vaccine: its stock, the doses this device holds, and what it can do with them. */
function StockLine({
  db,
  row,
  act,
}: {
  db: ClinicDatabase;
  row: VaccineRow;
  act: (what: () => Promise<string>) => Promise<void>;
}) {
  const [amount, setAmount] = useState("1");
  const rights = rightsOfRow(row, "doses", db.deviceId);
  const n = amountOf(amount);
  return (
    <tr data-testid="vaccine" aria-label={row.name}>
      <td>{row.name}</td>
      <td data-testid="in-stock">{rights.value}</td>
      <td data-testid="held-here">
        {rights.held}
        {rights.wanted > 0 && <span className="muted"> (asked for {rights.wanted} more)</span>}
      </td>
      <td>
        <label>
          <span className="visually-hidden">Doses of {row.name}</span>
          <input value={amount} onChange={(e) => setAmount(e.target.value)} inputMode="numeric" size={3} />
        </label>{" "}
        <button
          type="button"
          disabled={n === null}
          onClick={() =>
            void act(async () => {
              await db.stock.take(row.id, "doses", n!);
              await db.stock.update(row.id, (v) => v.administered.increment(n!));
              return `Administered ${n} of ${row.name}.`;
            })
          }
        >
          Administer
        </button>{" "}
        <button
          type="button"
          className="secondary"
          disabled={n === null}
          onClick={() =>
            void act(async () => {
              await db.stock.add(row.id, "doses", n!);
              return `Received ${n} of ${row.name}.`;
            })
          }
        >
          Receive
        </button>{" "}
        <button
          type="button"
          className="secondary"
          disabled={n === null}
          onClick={() =>
            void act(async () => {
              await db.stock.requestRights(row.id, "doses", rights.held + n!);
              return `Asked the other devices for ${n} doses of ${row.name}.`;
            })
          }
        >
          Ask for
        </button>
      </td>
    </tr>
  );
}
