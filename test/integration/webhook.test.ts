import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { OutboundGuard, REFUSALS } from '../../processors/core/http/outbound-guard.js';
import { postWebhook } from '../../processors/reports/webhook.js';
import { startWebhookCapture, type WebhookCapture } from '../support/reports-notify.js';

/**
 * The webhook call over real sockets, against real HTTP receivers on this machine (allowed
 * through the policy's network list, as an internal receiver would be).
 */
const receivers: WebhookCapture[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
async function receiver(...args: Parameters<typeof startWebhookCapture>): Promise<WebhookCapture> {
  const r = await startWebhookCapture(...args);
  receivers.push(r);
  return r;
}
const local = (hosts: string[] = ['127.0.0.1']) => new OutboundGuard({ allowedHosts: hosts, allowedNetworks: ['127.0.0.1/32'] });

describe('report webhooks over real connections', () => {
  it('connects to the address that was checked: a second DNS answer (rebinding) is never asked for', async () => {
    const hook = await receiver('/hook');
    const port = new URL(hook.url).port;
    let lookups = 0;
    // The first answer passes the check; any later one would point at the metadata service.
    const rebinding = async () => (lookups++ === 0 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '169.254.169.254', family: 4 }]);
    const guard = new OutboundGuard({ allowedHosts: ['rebind.sluice.test'], allowedNetworks: ['127.0.0.1/32'] }, rebinding);
    // rebind.sluice.test exists in no real DNS: the call can only arrive through the pinned address.
    expect(await postWebhook(guard, `http://rebind.sluice.test:${port}/hook`, { text: 'ready' }, 5000)).toEqual({ ok: true });
    expect(lookups).toBe(1);
    expect(hook.calls).toHaveLength(1);
    expect(JSON.parse(hook.calls[0]!.body)).toEqual({ text: 'ready' });
  });

  it('follows no redirect: the target it points at receives nothing', async () => {
    const inside = await receiver('/inside');
    const redirecting = await receiver('/hook', { status: 302, headers: { location: inside.url }, body: 'moved' });
    expect(await postWebhook(local(), redirecting.url, { text: 'x' }, 5000)).toEqual({ ok: false, error: 'answered 302: redirects are not followed' });
    expect(redirecting.calls).toHaveLength(1);
    expect(inside.calls).toHaveLength(0);
  });

  it("never returns the answer's body: only its status", async () => {
    const secret = `internal-answer-${randomUUID()}`;
    const failing = await receiver('/hook', { status: 500, body: secret });
    const outcome = await postWebhook(local(), failing.url, { text: 'x' }, 5000);
    expect(outcome).toEqual({ ok: false, error: 'answered 500' });
    expect(JSON.stringify(outcome)).not.toContain(secret);
  });

  it('refuses a loopback target unless its network is allowed; the receiver gets nothing', async () => {
    const hook = await receiver('/hook');
    const strict = new OutboundGuard({ allowedHosts: ['127.0.0.1', 'localhost'], allowedNetworks: [] });
    expect(await postWebhook(strict, hook.url, { text: 'x' }, 5000)).toEqual({ ok: false, error: REFUSALS.privateAddress });
    expect(await postWebhook(strict, hook.url.replace('127.0.0.1', 'localhost'), { text: 'x' }, 5000)).toEqual({ ok: false, error: REFUSALS.privateAddress });
    expect(await postWebhook(strict, hook.url.replace('127.0.0.1', '[::ffff:127.0.0.1]'), { text: 'x' }, 5000)).toEqual({ ok: false, error: REFUSALS.hostNotAllowed });
    expect(hook.calls).toHaveLength(0);
  });
});
