import { connects, externalIpv4 } from '../support/sockets.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPipeline } from '../../processors/core/pipeline/lint.js';
import { createProcessor, serve } from '../../processors/core/runtime/processor.js';
import { ROOT } from '../support/build.js';

/**
 * Where the health and metrics listeners bind, over real sockets: loopback unless the
 * deployment says otherwise (SLUICE_HTTP_HOST; the API listeners have SLUICE_HTTP_API_HOST,
 * proved in the ingest API's tests).
 */
async function healthServer(env: Record<string, string>) {
  const ctx = createProcessor({ name: 'bind-test', spec: {}, env: { ...process.env, SLUICE_LOG_LEVEL: 'silent', ...env }, handleSignals: false });
  const server = await serve(ctx, {}, undefined, 0);
  return { server, close: () => ctx.shutdown.run() };
}

describe('health and metrics listeners', () => {
  it('bind 127.0.0.1 by default: reachable from this machine only', async () => {
    const external = externalIpv4();
    const { server, close } = await healthServer({});
    try {
      expect(server.host).toBe('127.0.0.1');
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
      expect(await connects(external, server.port), `${external}:${server.port} must be closed`).toBe(false);
    } finally {
      await close();
    }
  });

  it('SLUICE_HTTP_HOST=0.0.0.0 opens them to every interface (what compose and Kubernetes set)', async () => {
    const external = externalIpv4();
    const { server, close } = await healthServer({ SLUICE_HTTP_HOST: '0.0.0.0' });
    try {
      expect(server.host).toBe('0.0.0.0');
      expect((await fetch(`http://${external}:${server.port}/metrics`)).status).toBe(200);
    } finally {
      await close();
    }
  });

  it("the export pipeline's http.host follows the same default and setting", () => {
    const file = join(ROOT, 'connectors/exports/lake.yaml');
    expect(loadPipeline(file, { ...process.env, SLUICE_HTTP_HOST: undefined }).http.host).toBe('127.0.0.1');
    expect(loadPipeline(file, { ...process.env, SLUICE_HTTP_HOST: '0.0.0.0' }).http.host).toBe('0.0.0.0');
  });
});
