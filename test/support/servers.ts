import net from 'node:net';
import { coreSettings, type CoreSettings } from '../../processors/core/config/core-settings.js';
import { loadSettings } from '../../processors/core/config/settings.js';

/**
 * The server settings a deployment must set (they have no defaults: production defaults hold
 * no local values), for unit tests that load settings or pipelines with an explicit env.
 */
export const SERVERS_ENV: Readonly<Record<string, string>> = {
  SLUICE_KAFKA_BROKERS: 'localhost:9092',
  SLUICE_SCHEMA_REGISTRY_URL: 'http://localhost:8081/apis/ccompat/v7',
  SLUICE_DATABASE_URL: 'postgres://sluice:sluice@localhost:5432/sluice',
  SLUICE_CONNECT_URL: 'http://localhost:8083',
  SLUICE_S3_BUCKET: 'sluice-lake',
  SLUICE_WAREHOUSE_URL: 'postgres://sluice:sluice@localhost:5432/warehouse',
};

/** The settings the integration tests use: the environment, with the local stack's .sluice/stack.env loaded into it (test/support/stack-env.setup.ts). */
export function testSettings(): CoreSettings {
  return loadSettings(coreSettings);
}

/**
 * Fails (never skips) when a server the test needs does not answer, naming the server,
 * where it was looked for and how to start it.
 */
export async function requireServer(name: string, hostPort: string, probe?: () => Promise<unknown>): Promise<void> {
  const [host, portText] = splitHostPort(hostPort);
  const port = Number(portText);
  try {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host, port, timeout: 3000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('timeout', () => {
        socket.destroy();
        reject(new Error('connection timed out'));
      });
      socket.once('error', reject);
    });
    if (probe) await probe();
  } catch (error) {
    throw new Error(
      `${name} is not reachable at ${hostPort}: ${(error as Error).message}. Start the stack with \`npm run stack:up\` (or point the SLUICE_* env at a running one).`,
    );
  }
}

export function hostPortOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}

function splitHostPort(hostPort: string): [string, string] {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i), hostPort.slice(i + 1)];
}

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `; last error: ${(lastError as Error).message}` : ''}`);
}
