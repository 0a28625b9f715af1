import type { DemoContext } from './context.js';
import { startReports } from '../../reports/reports.js';

const DEMO_REPORTS_KEY = 'sluice-demo-reports-key';

/**
 * The report: the report processor and its REST shim run in-process; the demo month's
 * commission report is requested through POST /reports/generate (a fixed request id, so a
 * rerun is answered from the first result), polled on GET /reports/{id} until it is
 * ready, then downloaded through the presigned link with plain fetch.
 */
/** Returns the report's CSV (the live step compares a row with live). */
export async function reportStep(ctx: DemoContext, month: string): Promise<string> {
  const log = ctx.ok;
  const key = process.env.SLUICE_REPORTS_API_KEY ?? DEMO_REPORTS_KEY;
  const env = { ...ctx.processorEnv, SLUICE_REPORTS_API_KEY: key, SLUICE_REPORTS_HTTP_PORT: '0' };
  const reports = await startReports({ env });
  try {
    const headers = { 'content-type': 'application/json', 'x-api-key': key };
    const requestId = `demo-agent_commissions-${month}`;
    const started = Date.now();
    const res = await fetch(`${reports.url}/reports/generate`, { method: 'POST', headers, body: JSON.stringify({ request_id: requestId, report_type: 'agent_commissions', month, format: 'csv' }) });
    const accepted = (await res.json()) as { request_id: string; state: string; status_url: string };
    if (res.status !== 202) throw new Error(`POST /reports/generate answered ${res.status}: ${JSON.stringify(accepted)}`);
    log(`POST /reports/generate -> ${res.status} in ${Date.now() - started} ms: ${JSON.stringify(accepted)}`);
    let status: { state: string; error?: { message: string }; download?: { url: string; expires_at: string }; result?: { rows: number }; from_earlier_result?: boolean } = { state: accepted.state };
    const deadline = Date.now() + 120_000;
    // The POST answers the state only (a repeated run's request is already `succeeded`); the link comes with GET.
    for (let first = true; first || (status.state !== 'succeeded' && status.state !== 'failed'); first = false) {
      if (Date.now() > deadline) throw new Error(`report ${requestId} still ${status.state} after 120 s`);
      if (!first) await new Promise((r) => setTimeout(r, 250));
      status = (await (await fetch(`${reports.url}/reports/${requestId}`, { headers })).json()) as typeof status;
    }
    if (status.state === 'failed' || !status.download) throw new Error(`report ${requestId} failed: ${status.error?.message ?? 'no download link'}`);
    log(`GET /reports/${requestId} -> succeeded: ${status.result?.rows} agents, link valid until ${status.download.expires_at}`);
    log(`download link: ${status.download.url}`);
    const csv = await (await fetch(status.download.url)).text();
    const lines = csv.trimEnd().split('\n');
    log(`first rows of the CSV (${lines.length - 1} rows):`);
    for (const line of lines.slice(0, 4)) console.log(`        ${line}`);
    return csv;
  } finally {
    await reports.stop();
  }
}
