import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/build.js';

/**
 * `sluice test` (the binary, no server): the shipped pipelines' own tests pass, and a
 * deliberately broken mapping in a copy fails with a diff naming the case, file and line.
 * Server settings are removed from the environment to prove no server is needed.
 */

const OFFLINE = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_'))) as NodeJS.ProcessEnv;
const sluiceTest = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'test', ...args], { encoding: 'utf8', cwd: ROOT, env: { ...OFFLINE, SLUICE_STACK_ENV: 'off' } });

/** A copy of connectors/exports and schemas/ in a temp dir, so the tests' relative schema paths hold. */
function copyOfExports(): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-test-cli-'));
  mkdirSync(join(root, 'connectors'));
  cpSync(join(ROOT, 'connectors/exports'), join(root, 'connectors/exports'), { recursive: true });
  cpSync(join(ROOT, 'schemas'), join(root, 'schemas'), { recursive: true });
  return root;
}

describe('sluice test', () => {
  it('passes the tests of every shipped pipeline in connectors/exports, one line per case', () => {
    const r = sluiceTest('connectors/exports/');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const cases = r.stdout.split('\n').filter((l) => l.startsWith('ok   '));
    expect(cases.length).toBeGreaterThanOrEqual(10);
    expect(r.stdout).toContain('ok   connectors/exports/lake.yaml:');
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed$/m);
  });

  it('fails a broken mapping in a copy with a diff naming the case, file and line, exit 1; JUnit XML for CI', () => {
    const root = copyOfExports();
    const file = join(root, 'connectors/exports/lake.yaml');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('"agent_id": subject,');
    writeFileSync(file, text.replace('"agent_id": subject,', '"agent_id": $uppercase(subject),'));
    const lines = text.split('\n');
    const caseLine = lines.findIndex((l) => l.includes('- name: deposit_made becomes one row')) + 1;
    const rowLine = lines.findIndex((l, i) => i >= caseLine && l.trim() === 'row:') + 2; // the row's first field: where its value starts
    const junit = join(root, 'report.xml');
    const r = sluiceTest(file, '--format', 'junit', '--output', junit);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain(`FAIL ${file}:${caseLine} deposit_made becomes one row with its exact amount, keyed by type and UTC day`);
    expect(r.stdout).toContain(`${file}:${rowLine}: row differs (- expected, + got):`);
    expect(r.stdout).toContain('- row.agent_id: "agent-7"');
    expect(r.stdout).toContain('+ row.agent_id: "AGENT-7"');
    // The DLQ and dedupe cases do not read agent_id and still pass.
    expect(r.stdout).toMatch(/^ok {3}.*a tombstone \(null value\) is not_avro$/m);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuites name="sluice test" tests="\d+" failures="[1-9]\d*" errors="0">/);
    expect(xml).toContain('<failure message=');
  });
});
