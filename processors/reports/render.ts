import { stringify as losslessStringify } from 'lossless-json';
import type { CommissionRow } from './commission.js';
import { shownRequest, type ReportRequest } from './request.js';
import { csvField, csvTextField } from '../core/text/csv.js';

/**
 * The report file (docs/domain.md ("The report")): one row per agent with at least one event in the
 * month, ordered by agent_id in plain code-point order, these columns in this order. Money
 * is integer minor units, written as exact integers (JSON numbers beyond 2^53 included).
 */

export const REPORT_COLUMNS = [
  'agent_id',
  'month',
  'events',
  'customers_onboarded',
  'deposits_minor',
  'withdrawals_minor',
  'investments_minor',
  'net_inflow_minor',
  'commission_minor',
  'currency',
] as const;

export interface ReportMetadata {
  generated_at: string;
  rules_version: string;
  /** Where the month was read: the lake, or the warehouse (`source: warehouse`). */
  lake?: { bucket: string; prefix: string; files: number; rows_read: number; duplicates_ignored: number };
  warehouse?: { table: string; rows_read: number };
}

/** Code-point order (not localeCompare, not UTF-16 unit order for astral characters). */
export function byCodePoint(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function cells(row: CommissionRow, month: string, currency: string): (string | number | bigint)[] {
  return [row.agentId, month, row.events, row.customersOnboarded, row.depositsMinor, row.withdrawalsMinor, row.investmentsMinor, row.netInflowMinor, row.commissionMinor, currency];
}

/**
 * CSV with a header row. Text cells (agent_id, month, currency) are neutralised against
 * formula injection (a leading `'` inside a quoted field for a value starting with `=`,
 * `+`, `-`, `@`, tab or CR: DOMAIN.md "Report"); numbers are plain integers (`-1500`).
 */
export function renderCsv(rows: readonly CommissionRow[], month: string, currency: string): string {
  const lines = [REPORT_COLUMNS.join(',')];
  for (const row of rows) lines.push(cells(row, month, currency).map((c) => (typeof c === 'string' ? csvTextField(c) : csvField(String(c)))).join(','));
  return lines.join('\n') + '\n';
}

export function renderJson(rows: readonly CommissionRow[], request: ReportRequest, currency: string, metadata: ReportMetadata): string {
  const body = {
    request: shownRequest(request),
    metadata: { ...metadata, report_type: request.report_type, month: request.month, currency, columns: REPORT_COLUMNS, row_count: rows.length },
    rows: rows.map((r) => Object.fromEntries(REPORT_COLUMNS.map((c, i) => [c, cells(r, request.month, currency)[i]]))),
  };
  // lossless-json writes BigInt as plain JSON numbers, exact.
  return losslessStringify(body, undefined, 2) + '\n';
}
