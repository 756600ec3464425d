/**
 * Verifiable audit files (PROTOCOL.md 11): `db.exportAudit(space)` writes one, `verifyAudit(bytes)`
 * (and the `shoal-audit verify <file>` command) checks it with no device and no network.
 *
 * @example
 * import { verifyAudit, formatEvent } from "@shoal/client/audit";
 * const report = await verifyAudit(bytes);
 * for (const e of report.events) console.log(formatEvent(e));
 * console.log(report.intact ? "intact" : report.findings);
 *
 * @packageDocumentation
 */
export { verifyAudit, type AuditReport } from "./verify-audit.ts";
export {
  formatEvent,
  AUDIT_VIEWS_COLLECTION,
  type AuditEvent,
  type AuditRecordChange,
  type AuditScope,
} from "./audit-events.ts";
export {
  AUDIT_MAGIC,
  AUDIT_FORMAT_VERSION,
  readAuditFile,
  type AuditFinding,
  type AuditRun,
} from "./audit-file.ts";
export type { ExportAuditOptions } from "./export-audit.ts";
