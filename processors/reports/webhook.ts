import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { OutboundGuard } from '../core/http/outbound-guard.js';

/**
 * One POST of a JSON body to a report's webhook, through the outbound guard (allow-listed
 * host, public address unless allowed, connected to the very address that was checked),
 * following no redirect. The outcome says only the status code or a short fixed reason:
 * the answer's body is never read, stored or returned (what a forged request would use to
 * read an internal service through us).
 */

export type WebhookOutcome = { ok: true } | { ok: false; error: string };

export async function postWebhook(guard: OutboundGuard, target: string, payload: unknown, timeoutMs: number): Promise<WebhookOutcome> {
  const checked = await guard.check(target);
  if (!checked.ok) return { ok: false, error: checked.reason };
  const { url, address, family } = checked;
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  // The name was resolved and checked once; the connection goes to that address (no second
  // lookup a rebinding DNS server could answer differently). TLS still verifies the name.
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<WebhookOutcome>((resolve) => {
    const req = client.request(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': body.length, 'user-agent': 'sluice-reports' },
        lookup: pinned,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.destroy(); // the body is not wanted
        if (status >= 200 && status < 300) resolve({ ok: true });
        else if (status >= 300 && status < 400) resolve({ ok: false, error: `answered ${status}: redirects are not followed` });
        else resolve({ ok: false, error: `answered ${status}` });
      },
    );
    req.once('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'AbortError' || error.name === 'TimeoutError') resolve({ ok: false, error: `no answer within ${timeoutMs} ms` });
      else resolve({ ok: false, error: `connection failed${error.code ? `: ${error.code}` : ''}` });
    });
    req.end(body);
  });
}
