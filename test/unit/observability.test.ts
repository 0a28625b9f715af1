import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import { createMetricsRegistry, Counter } from '../../processors/core/metrics/metrics.js';
import { startHealthServer } from '../../processors/core/http/health-server.js';
import { Shutdown } from '../../processors/core/lifecycle/shutdown.js';

function capture() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))));
  return { stream, lines };
}

describe('logging', () => {
  it('writes JSON lines with secrets redacted', async () => {
    const { stream, lines } = capture();
    const log = createLogger({ name: 't', destination: stream });
    log.info({ config: { kafka: { saslPassword: 'hunter2' }, database: { url: 'postgres://u:pw@h/db' } }, headers: { authorization: 'Bearer x' } }, 'started');
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatchObject({ level: 'info', name: 't', msg: 'started' });
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('pw@h');
    expect(text).not.toContain('Bearer x');
  });
});

describe('health server', () => {
  it('serves /healthz, /readyz with dependency checks, and /metrics', async () => {
    const { stream } = capture();
    const metrics = createMetricsRegistry('unit');
    new Counter({ name: 'sluice_test_records_total', help: 'records', registers: [metrics] }).inc(3);
    let brokerUp = true;
    const server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      metrics,
      logger: createLogger({ name: 't', destination: stream }),
      readiness: { kafka: async () => { if (!brokerUp) throw new Error('broker unreachable'); } },
    });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      brokerUp = false;
      const notReady = await fetch(`${base}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({ status: 'not ready', checks: { kafka: 'broker unreachable' } });
      server.setLive(false, 'consume loop crashed');
      expect((await fetch(`${base}/healthz`)).status).toBe(503);
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toContain('sluice_test_records_total{processor="unit"} 3');
      expect(text).toContain('sluice_process_resident_memory_bytes');
    } finally {
      await server.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('closes in reverse order and reports a closer that overruns its deadline', async () => {
    const { stream } = capture();
    const order: string[] = [];
    const shutdown = new Shutdown(createLogger({ name: 't', destination: stream }), 50, () => undefined);
    shutdown.add('connections', () => void order.push('connections'));
    shutdown.add('hung sink', () => new Promise(() => undefined));
    shutdown.add('consumer', async () => void order.push('consumer'));
    expect(await shutdown.run()).toBe(false);
    expect(order).toEqual(['consumer', 'connections']);
    expect(shutdown.signal.aborted).toBe(true);
  });
});
