import type { MembershipOp, Role } from "../members/membership-op.ts";
import { mayWrite } from "../members/may-write.ts";
import type { MembershipState } from "../members/membership-state.ts";
import type { Commit } from "../replica/commit.ts";

import { AUDIT_VIEWS_COLLECTION } from "../replica/collection-spec.ts";

export { AUDIT_VIEWS_COLLECTION };

/** What an export covers, as its scope section says (canonical JSON). */
export interface AuditScope {
  readonly v: 1;
  readonly space: string;
  /** The space's creator key and claim salt (hex), which derive its id; null for a space without a claim. */
  readonly creatorKey: string | null;
  readonly salt: string | null;
  /** Claimed times (ms) the summaries cover, inclusive; null: unbounded. */
  readonly from: number | null;
  readonly to: number | null;
  /** Record ids the summaries cover; null: every record. */
  readonly records: readonly string[] | null;
  /** The exporting device and its clock when it exported (a claim too). */
  readonly exportedBy: string;
  readonly exportedAt: number;
}

/** One record touched by a change. */
export interface AuditRecordChange {
  readonly collection: string;
  readonly record: string;
  readonly op: "insert" | "update" | "delete";
  /** Top-level fields the commit changed (all fields of an insert). */
  readonly fields: readonly string[];
}

/** One line of the audit: a change, a view or a membership operation, as its signed commit says. */
export interface AuditEvent {
  /** `<device>.<seq>`: the signed commit this event is read from. */
  readonly commit: string;
  readonly kind: "change" | "view" | "membership";
  readonly device: string;
  /** The author's person in the membership log (null: open space, or a device the log does not know). */
  readonly person: string | null;
  /** The person's name, opened with the export's name keys (null when it does not open). */
  readonly name: string | null;
  /**
   * The role the log gives this commit: the person's role when the commit counts, or why it does not
   * (`"reader"`, `"removed"`, `"not-a-member"`: then `allowed` is false). `"open"`: a space without log.
   */
  readonly role: Role | "open" | "removed" | "not-a-member";
  /** Whether the membership log lets this commit count. */
  readonly allowed: boolean;
  /** The author's clock when it wrote the commit (ms): a claim, never checked against anything. */
  readonly claimedAt: number;
  readonly changes?: readonly AuditRecordChange[];
  /** A view event: the record a person opened. */
  readonly viewed?: { readonly collection: string; readonly record: string };
  /** A membership operation: its action, its target person, whether it counts (and why not). */
  readonly membership?: {
    readonly action: string;
    readonly person: string | null;
    readonly role: string | null;
    readonly counted: boolean;
    readonly refused: string | null;
  };
}

/** A carried commit as opened by the verifier (or the exporter, by the same code). */
export interface OpenedAuditCommit {
  readonly device: string;
  readonly seq: number;
  /** A data commit's decoded plaintext (undefined when it did not open). */
  readonly commit?: Commit;
  /** A membership commit's verified operation and its id. */
  readonly op?: { readonly id: string; readonly op: MembershipOp };
}

/** Whether a claimed time and a commit's records fall in the scope. */
export function inScope(scope: AuditScope, at: number, records: readonly string[]): boolean {
  if (scope.from !== null && at < scope.from) return false;
  if (scope.to !== null && at > scope.to) return false;
  return scope.records === null || records.some((r) => scope.records!.includes(r));
}

/** The record a view event names, or undefined if `change` is not one. */
function viewOf(change: Commit["changes"][number]): { collection: string; record: string } | undefined {
  if (change.collection !== AUDIT_VIEWS_COLLECTION || change.op !== "insert") return undefined;
  const json = change.create?.json as { collection?: unknown; record?: unknown } | undefined;
  if (typeof json?.collection !== "string" || typeof json.record !== "string") return undefined;
  return { collection: json.collection, record: json.record };
}

/**
 * The role a commit's author had when it wrote commit `seq`, as the log shows it: a commit within the
 * `cut` of a demotion or removal was written under the role the person had before that operation; any
 * other counted commit under the person's role now. A commit the log refuses gets the refusal.
 */
export function roleAt(
  state: MembershipState | undefined,
  ops: ReadonlyMap<string, MembershipOp>,
  device: string,
  seq: number,
): { role: AuditEvent["role"]; allowed: boolean } {
  if (!state) return { role: "open", allowed: true };
  const refusal = mayWrite(state, device, seq);
  if (refusal) return { role: refusal, allowed: false };
  const person = state.everOwner.get(device);
  const roles = new Map<string, Role>();
  const invited = new Map<string, { role: Role; person?: string }>();
  for (const id of state.order) {
    const a = ops.get(id)?.action;
    if (!a) continue;
    const ends = a.kind === "remove" || (a.kind === "set-role" && a.role === "reader") ? a : undefined;
    if (ends?.cut && ends.person === person && (ends.cut[device] ?? 0) >= seq) {
      const before = roles.get(ends.person);
      if (before) return { role: before, allowed: true };
    }
    if (a.kind === "create") roles.set(a.person, "admin");
    else if (a.kind === "add-person" || a.kind === "set-role") roles.set(a.person, a.role);
    else if (a.kind === "invite")
      invited.set(a.invitation, { role: a.role, ...(a.person && { person: a.person }) });
    else if (a.kind === "redeem") {
      const inv = invited.get(a.invitation);
      if (inv && !inv.person) roles.set(a.person, inv.role);
    }
  }
  const now = person === undefined ? undefined : state.members.get(person)?.role;
  return { role: now ?? "removed", allowed: true };
}

function membershipSummary(op: MembershipOp, id: string, state: MembershipState | undefined) {
  const a = op.action as { kind: string; person?: unknown; role?: unknown };
  return {
    action: a.kind,
    person: typeof a.person === "string" ? a.person : null,
    role: typeof a.role === "string" ? a.role : null,
    counted: state?.order.includes(id) ?? false,
    refused: state?.refused.get(id) ?? (state?.waiting.includes(id) ? "waiting" : null),
  };
}

/**
 * The audit's events, derived from the opened commits the same way by the exporter and the verifier:
 * every data commit and membership commit in scope, ordered by claimed time, then device, then seq.
 * Deterministic: the verifier re-derives them from the signed commits and compares them byte for byte
 * (as canonical JSON) with the file's summaries.
 */
export function deriveEvents(
  scope: AuditScope,
  opened: readonly OpenedAuditCommit[],
  state: MembershipState | undefined,
  ops: ReadonlyMap<string, MembershipOp>,
  names: ReadonlyMap<string, string>,
): AuditEvent[] {
  const events: AuditEvent[] = [];
  for (const o of opened) {
    const person = state?.everOwner.get(o.device) ?? null;
    const who = { device: o.device, person, name: (person && names.get(person)) ?? null };
    const commit = `${o.device}.${o.seq}`;
    if (o.op) {
      if (!inScope({ ...scope, records: null }, o.op.op.at, [])) continue;
      events.push({
        commit,
        kind: "membership",
        ...who,
        role: roleAt(state, ops, o.device, o.seq).role,
        allowed: true,
        claimedAt: o.op.op.at,
        membership: membershipSummary(o.op.op, o.op.id, state),
      });
      continue;
    }
    const c = o.commit;
    if (!c || c.defect) continue;
    const views = c.changes.map(viewOf);
    const touched = c.changes.map((ch, i) => views[i]?.record ?? ch.record);
    if (!inScope(scope, c.at, touched)) continue;
    const { role, allowed } = roleAt(state, ops, o.device, o.seq);
    const base = { commit, ...who, role, allowed, claimedAt: c.at };
    const changes: AuditRecordChange[] = [];
    c.changes.forEach((ch, i) => {
      if (scope.records !== null && !scope.records.includes(touched[i]!)) return;
      const view = views[i];
      if (view) events.push({ ...base, commit: `${commit}#${i}`, kind: "view", viewed: view });
      else {
        const fields = ch.op === "insert" && ch.create ? Object.keys(ch.create.json as object) : ch.paths;
        changes.push({ collection: ch.collection, record: ch.record, op: ch.op, fields: [...fields].sort() });
      }
    });
    if (changes.length > 0) events.push({ ...base, kind: "change", changes });
  }
  return events.sort(
    (a, b) => a.claimedAt - b.claimedAt || (a.commit < b.commit ? -1 : a.commit > b.commit ? 1 : 0),
  );
}

/** One event as a line for people: when (claimed), who, role, what. */
export function formatEvent(e: AuditEvent): string {
  const when = `${new Date(e.claimedAt).toISOString()} (claimed)`;
  const who = `${e.name ?? "(name unknown)"} [person ${e.person?.slice(0, 8) ?? "-"}, device ${e.device.slice(0, 8)}, role ${e.role}]`;
  const flag = e.allowed ? "" : "  <-- NOT ALLOWED by the membership log";
  if (e.kind === "view") return `${when}  ${who}  viewed ${e.viewed!.collection}/${e.viewed!.record}${flag}`;
  if (e.kind === "membership") {
    const m = e.membership!;
    const what = [m.action, m.person && `person ${m.person.slice(0, 8)}`, m.role && `role ${m.role}`]
      .filter(Boolean)
      .join(" ");
    return `${when}  ${who}  membership: ${what}${m.counted ? "" : ` (does not count: ${m.refused})`}`;
  }
  const what = e
    .changes!.map((c) => `${c.op} ${c.collection}/${c.record} fields: ${c.fields.join(", ") || "-"}`)
    .join("; ");
  return `${when}  ${who}  ${what}${flag}`;
}
