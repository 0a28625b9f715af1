import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runSchemasCheck, runSchemasRegister, SCHEMAS_DIR, type CliOutput, type RegistryTarget } from '../../processors/cli/commands/schemas.js';
import { RegistryRestClient } from '../../processors/core/registry/ccompat.js';
import { checkSchemasOffline } from '../../processors/core/schemas/check.js';
import { loadContracts } from '../../processors/core/schemas/contracts.js';
import { envelope, tempSchemasDir, writeSchema } from '../support/schema-dirs.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

/**
 * The schema evolution gate end to end: the shipped contracts pass the offline check CI runs,
 * `register` puts them in the real registry idempotently, and the online check gets the
 * registry's verdict under the subject's level. Each test that writes owns a unique subject.
 */
const settings = testSettings();
const registry: RegistryTarget = { url: settings.registry.url, auth: { username: settings.registry.username, password: settings.registry.password } };

function capture(): CliOutput & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, log: (l) => out.push(l), error: (l) => err.push(l) };
}

/** A temp schemas folder with one contract under a subject no other test uses. */
function uniqueContract(versions: object[], compatibility = 'BACKWARD_TRANSITIVE'): { root: string; dir: string; subject: string } {
  const subject = `test.gate-${randomUUID()}-value`;
  const root = tempSchemasDir({ ev: { subject, topic: subject.replace(/-value$/, ''), compatibility, versions } });
  return { root, dir: join(root, 'ev'), subject };
}

const withRegion = (field: object) => envelope({ extraFields: [field] });

describe('shipped schemas/ (offline: what CI runs)', () => {
  it('every contract passes the offline check against its versions and git history', async () => {
    const reports = checkSchemasOffline(SCHEMAS_DIR);
    expect(reports.map((r) => r.contract.name)).toContain('agent-event');
    expect(reports.flatMap((r) => r.problems.flatMap((p) => p.messages))).toEqual([]);
    const o = capture();
    expect(await runSchemasCheck({ dir: SCHEMAS_DIR }, o)).toBe(0);
    expect(o.err).toEqual([]);
    expect(o.out.at(-1)).toMatch(/^schemas check: \d+ contracts? compatible, offline only/);
  });
});

describe('schemas gate against the registry', () => {
  const rest = new RegistryRestClient(registry.url, registry.auth);

  beforeAll(async () => {
    await requireServer('schema registry', hostPortOf(registry.url), () => rest.subjects());
  });

  it('registers the shipped schemas with their level, and a second run returns the same ids', async () => {
    const first = capture();
    expect(await runSchemasRegister({ dir: SCHEMAS_DIR, registry }, first)).toBe(0);
    expect(first.err).toEqual([]);
    expect(first.out).toContainEqual(expect.stringMatching(/^ {2}sluice\.agent-events-value v1: registry version \d+, id \d+ \(.*schemas\/agent-event\/v1\.avsc\)$/));
    const second = capture();
    expect(await runSchemasRegister({ dir: SCHEMAS_DIR, registry }, second)).toBe(0);
    expect(second.out).toEqual(first.out);
    for (const contract of loadContracts(SCHEMAS_DIR)) {
      expect(await rest.subjectLevel(contract.subject)).toBe(contract.compatibility);
      const current = contract.versions[contract.versions.length - 1]!;
      expect(await rest.lookup(contract.subject, current.text)).toBeDefined();
    }
    // And the online check of the shipped schemas now finds them registered.
    const o = capture();
    expect(await runSchemasCheck({ dir: SCHEMAS_DIR, registry }, o)).toBe(0);
    expect(o.out).toContainEqual(expect.stringMatching(/^ {2}online \(.*\): compatible; v\d+ is registered as version \d+ \(id \d+\)$/));
  });

  it('registers v1..vN in order under a new subject, setting the level first', async () => {
    const { root, subject } = uniqueContract([envelope(), withRegion({ name: 'region', type: ['null', 'string'], default: null })], 'FULL_TRANSITIVE');
    const o = capture();
    expect(await runSchemasRegister({ dir: root, registry }, o)).toBe(0);
    expect(o.out.slice(1, 3)).toEqual([
      expect.stringMatching(new RegExp(`^ {2}${subject.replace(/\./g, '\\.')} v1: registry version 1, id \\d+`)),
      expect.stringMatching(new RegExp(`^ {2}${subject.replace(/\./g, '\\.')} v2: registry version 2, id \\d+`)),
    ]);
    expect(await rest.subjectLevel(subject)).toBe('FULL_TRANSITIVE');
    expect(await rest.subjectVersions(subject)).toEqual([1, 2]);
  });

  it('online check passes a compatible v2 and names the registry\'s verdict', async () => {
    const { root, dir, subject } = uniqueContract([envelope()]);
    expect(await runSchemasRegister({ dir: root, registry }, capture())).toBe(0);
    writeSchema(dir, 2, withRegion({ name: 'region', type: ['null', 'string'], default: null }));
    const o = capture();
    expect(await runSchemasCheck({ dir: root, registry }, o)).toBe(0);
    expect(o.err).toEqual([]);
    expect(o.out).toContain(`  online (${registry.url}): compatible; v2 is compatible with all 1 registered versions under BACKWARD_TRANSITIVE`);
    expect(o.out.at(-1)).toBe('schemas check: 1 contract compatible, offline and online');
    expect(await rest.subjectVersions(subject)).toEqual([1]); // a check registers nothing
  });

  it('online check fails an incompatible v2: the registry\'s verdict plus the offline field-level reason', async () => {
    const { root, dir } = uniqueContract([envelope()]);
    expect(await runSchemasRegister({ dir: root, registry }, capture())).toBe(0);
    writeSchema(dir, 2, withRegion({ name: 'region', type: 'string' }));
    const o = capture();
    expect(await runSchemasCheck({ dir: root, registry }, o)).toBe(1);
    expect(o.err).toEqual([
      `${join(dir, 'v2.avsc')}: field AgentEvent.region was added without a default: consumers using v2 cannot read events written with v1 (BACKWARD_TRANSITIVE)`,
      expect.stringContaining(`${join(dir, 'v2.avsc')}: the registry at ${registry.url} rejects it for subject`),
    ]);
    expect(o.out).toContain(`  online (${registry.url}): INCOMPATIBLE; v2 is rejected by the registry: incompatible with all 1 registered versions under BACKWARD_TRANSITIVE`);
    expect(o.out.at(-1)).toBe('schemas check: 1 of 1 contract INCOMPATIBLE, offline and online');
  });

  it('online check fails when the registry holds a version the repository does not have', async () => {
    const { root, dir, subject } = uniqueContract([envelope()]);
    expect(await runSchemasRegister({ dir: root, registry }, capture())).toBe(0);
    // Someone registered a v2 by hand that this checkout never had.
    await rest.register(subject, JSON.stringify(withRegion({ name: 'region', type: 'string', default: 'eu' })));
    writeSchema(dir, 2, withRegion({ name: 'region', type: 'long', default: 0 }));
    const o = capture();
    expect(await runSchemasCheck({ dir: root, registry }, o)).toBe(1);
    expect(o.err).toEqual([expect.stringContaining('although the offline check passed: the registry holds versions the repository does not have')]);
  });

  it('the online check follows a transitive level across all registered versions', async () => {
    // v3 reads v2 but not v1: BACKWARD lets it through, BACKWARD_TRANSITIVE does not.
    const r1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] };
    const r2 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }, { name: 'b', type: 'int', default: 0 }] };
    const r3 = { type: 'record', name: 'R', fields: [{ name: 'b', type: 'int' }] };
    for (const [level, exit] of [['BACKWARD', 0], ['BACKWARD_TRANSITIVE', 1]] as const) {
      const { root, dir } = uniqueContract([r1, r2], level);
      expect(await runSchemasRegister({ dir: root, registry }, capture())).toBe(0);
      writeSchema(dir, 3, r3);
      const o = capture();
      expect(await runSchemasCheck({ dir: root, registry, history: false }, o), `${level}: ${o.err.join('\n')}`).toBe(exit);
      expect(o.out).toContainEqual(expect.stringContaining(exit === 0 ? 'compatible with registered version 2 under BACKWARD' : 'INCOMPATIBLE; v3 is rejected'));
    }
  });

  it('reports a subject whose level in the registry is not contract.yaml\'s', async () => {
    const { root, subject } = uniqueContract([envelope()]);
    expect(await runSchemasRegister({ dir: root, registry }, capture())).toBe(0);
    await rest.setSubjectLevel(subject, 'NONE');
    const o = capture();
    expect(await runSchemasCheck({ dir: root, registry }, o)).toBe(0);
    expect(o.out).toContain(`  note: the registry checks subject ${subject} under NONE, contract.yaml says BACKWARD_TRANSITIVE (\`sluice schemas register\` sets it)`);
    expect(await runSchemasRegister({ dir: root, registry }, capture())).toBe(0);
    expect(await rest.subjectLevel(subject)).toBe('BACKWARD_TRANSITIVE');
  });

  it('register refuses to start when the offline check fails, and registers nothing', async () => {
    const { root, subject } = uniqueContract([envelope(), withRegion({ name: 'region', type: 'string' })]);
    const o = capture();
    expect(await runSchemasRegister({ dir: root, registry }, o)).toBe(1);
    expect(o.err.at(-1)).toBe('sluice: nothing registered: ev failed the offline check (sluice schemas check)');
    expect(await rest.subjectVersions(subject)).toBeUndefined();
  });

  it('exits 2 naming the registry when it cannot be reached', async () => {
    const { root } = uniqueContract([envelope()]);
    const o = capture();
    expect(await runSchemasCheck({ dir: root, registry: { url: 'http://127.0.0.1:9/apis/ccompat/v7' } }, o)).toBe(2);
    expect(o.err).toEqual([expect.stringContaining('schema registry at http://127.0.0.1:9/apis/ccompat/v7 is unreachable')]);
    expect(o.out).toContain('  online (http://127.0.0.1:9/apis/ccompat/v7): NOT CHECKED');
    expect(o.out.at(-1)).toBe('schemas check: 1 contract compatible offline; NOT CHECKED online: the registry could not be asked');
  });
});
