import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from '../support/build.js';
import { loadComposeFile, type ComposeService } from '../support/compose-file.js';
import { freePort } from '../support/export-harness.js';
import { eventually } from '../support/servers.js';
import { SluiceProcess } from '../support/sluice-process.js';

/**
 * The Sluice services of docker-compose.yml, run as their containers would run them, against
 * the real local stack (no Docker engine here): from a folder holding only what the
 * Dockerfile's final stage copies into the image (so a file the image lacks fails here too),
 * with the service's own command and environment as Compose resolves it without a .env file.
 * Only what must differ outside a container is changed: the server endpoints and their
 * credentials (compose hostnames -> the local stack), each service's port (the compose
 * health check's URL is rewritten to it), and the state folder of a volume. The one-shot
 * `topics` service runs first, as Compose orders it. Then every long-running service must pass
 * its own compose health check, answer /readyz 200 (the normalizer and the connector monitor
 * need the Debezium connector, which `npm run demo` or the stack applies: only their health
 * check is required), still be running, and stop cleanly on SIGTERM.
 *
 * The services keep their default consumer groups: starting them is what restarting the
 * compose services does, and their exactly-once design makes that harmless to the stack's data.
 */

const compose = loadComposeFile();

/** Compose's `${NAME:-default}` / `${NAME}` as a fresh checkout without .env resolves them. */
function resolveVariables(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, fallback: string | undefined) => fallback ?? '');
}

function argv(command: ComposeService['command']): string[] {
  if (command === undefined) return [];
  return typeof command === 'string' ? command.split(/\s+/) : command;
}

/** The files the image's final stage copies (`COPY <src> ./<dst>`, not `--from=build`), from the Dockerfile itself. */
function imageCopies(): string[] {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  return [...finalStage.matchAll(/^COPY\s+(?!--from)(\S+)\s+\S+$/gm)].map((m) => m[1]!);
}

/** Each service's port setting (env) and the port its compose health check probes. */
const PORT_ENV: Record<string, string> = {
  'ingest-api': 'SLUICE_INGEST_API_PORT',
  normalizer: 'SLUICE_NORMALIZER_HTTP_PORT',
  export: 'SLUICE_EXPORT_HTTP_PORT',
  reports: 'SLUICE_REPORTS_HTTP_PORT',
  live: 'SLUICE_LIVE_HTTP_PORT',
  files: 'SLUICE_FILES_HTTP_PORT',
  compact: 'SLUICE_COMPACT_HTTP_PORT',
  'connectors-monitor': 'SLUICE_CONNECTORS_MONITOR_HTTP_PORT',
};
/** Ready only once the Debezium connector runs (the CDC topic): their compose health check is what is required. */
const NEEDS_CONNECTOR = new Set(['normalizer', 'connectors-monitor']);
/** Endpoints and credentials: compose hostnames there, the local stack's here. */
const ENDPOINTS = ['SLUICE_KAFKA_BROKERS', 'SLUICE_SCHEMA_REGISTRY_URL', 'SLUICE_DATABASE_URL', 'SLUICE_WAREHOUSE_URL', 'SLUICE_CONNECT_URL', 'SLUICE_S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];

const services = Object.entries(compose.services).filter(([, s]) => s.image === 'sluice:local' && s.healthcheck !== undefined && s.restart !== 'no' && s.profiles === undefined);

let image: string;
let state: string;

function composeEnv(name: string, s: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.environment ?? {})) if (v !== null) env[k] = resolveVariables(String(v));
  for (const k of ENDPOINTS) {
    expect(env[k], `${name} sets ${k} itself`).toBeTruthy();
    env[k] = process.env[k]!;
  }
  return env;
}

/** The service's compose health check, its URL moved to `port`: exit 0 or not. */
function healthCheckPasses(s: ComposeService, port: number): boolean {
  const test = s.healthcheck!.test as string[];
  expect(test[0]).toBe('CMD');
  const [program, ...args] = test.slice(1).map((a) => a.replace(/localhost:\d+/, `localhost:${port}`));
  expect(program).toBe('node');
  return spawnSync(process.execPath, args, { timeout: 10_000 }).status === 0;
}

/** `sluice <args>` from the image folder, as the image's entrypoint runs it. */
function sluice(name: string, args: string[], env: Record<string, string>, port: number): SluiceProcess {
  return new SluiceProcess(`compose-${name}`, args, env, port, { bin: join(image, 'bin/sluice.mjs'), cwd: image });
}

beforeAll(() => {
  buildDist('processors/cli/main.js');
  image = mkdtempSync(join(tmpdir(), 'sluice-image-'));
  state = mkdtempSync(join(tmpdir(), 'sluice-compose-state-'));
  for (const src of imageCopies()) cpSync(join(ROOT, src), join(image, src), { recursive: true });
  // The image's node_modules and dist come from its build stage (npm ci, tsc): here the checkout's.
  cpSync(join(ROOT, 'dist'), join(image, 'dist'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'), 'dir');
}, 120_000);

afterAll(() => {
  rmSync(image, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

describe('docker-compose.yml: the Sluice services run with their compose command and environment', () => {
  it('copies into the image every folder a service reads at run time', () => {
    expect(imageCopies()).toEqual(expect.arrayContaining(['bin', 'connectors', 'schemas', 'package.json']));
    expect(services.map(([name]) => name).sort()).toEqual(Object.keys(PORT_ENV).sort());
    for (const [name, s] of services) {
      const probed = /localhost:(\d+)/.exec((s.healthcheck!.test as string[]).join(' '))?.[1];
      expect((s as { ports?: string[] }).ports, `${name} publishes the port its health check probes`).toContain(`${probed}:${probed}`);
    }
  });

  it(
    'the topic plan applies (the one-shot `topics` service), then every service passes its health check, is ready and stops cleanly',
    async () => {
      const topics = compose.services.topics!;
      const plan = spawnSync(process.execPath, [join(image, 'bin/sluice.mjs'), ...argv(topics.command)], {
        cwd: image,
        env: { ...process.env, ...composeEnv('topics', topics) },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(plan.status, `${plan.stdout}\n${plan.stderr}`).toBe(0);

      const running: { name: string; service: ComposeService; process: SluiceProcess }[] = [];
      try {
        for (const [name, s] of services) {
          const port = await freePort();
          const env = { ...composeEnv(name, s), [PORT_ENV[name]!]: String(port) };
          // A named volume in compose: a folder of this test here.
          for (const [k, v] of Object.entries(env)) if (v.startsWith('/var/lib/sluice/')) env[k] = join(state, name);
          running.push({ name, service: s, process: sluice(name, argv(s.command), env, port).start() });
        }
        for (const r of running) {
          await eventually(
            async () => {
              expect(r.process.running, `${r.name} exited (${r.process.exitCode}); see ${r.process.log}`).toBe(true);
              expect(healthCheckPasses(r.service, r.process.port), `${r.name}: its compose health check`).toBe(true);
              if (!NEEDS_CONNECTOR.has(r.name)) expect((await r.process.readiness())?.status, `${r.name}: /readyz`).toBe(200);
              return true;
            },
            90_000,
            `${r.name} healthy and ready`,
          );
        }
        for (const r of running) expect(r.process.running, `${r.name} still runs`).toBe(true);
      } finally {
        const codes = await Promise.all(running.map(async (r) => [r.name, await r.process.kill('SIGTERM')] as const));
        expect(Object.fromEntries(codes)).toEqual(Object.fromEntries(running.map((r) => [r.name, 0])));
      }
    },
    300_000,
  );
});
