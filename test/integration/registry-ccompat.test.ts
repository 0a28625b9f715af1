import { randomUUID } from 'node:crypto';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { beforeAll, describe, expect, it } from 'vitest';
import { RegistryRestClient, registerWithLevel } from '../../processors/core/registry/ccompat.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

/**
 * The gaps between the Confluent REST API that @kafkajs/confluent-schema-registry expects
 * and what the local registry (Apicurio 3.3 ccompat) answers, and proof that the bridge in
 * processors/core/registry/ccompat.ts closes them. If a registry upgrade closes a gap, the
 * "gap" expectation here fails: then the bridge for it can go.
 */
const settings = testSettings();
const schemaV1 = JSON.stringify({ type: 'record', name: 'Gap', namespace: 'io.sluice.test', fields: [{ name: 'id', type: 'string' }] });
const schemaV2 = JSON.stringify({
  type: 'record',
  name: 'Gap',
  namespace: 'io.sluice.test',
  fields: [{ name: 'id', type: 'string' }, { name: 'n', type: 'long', default: 0 }],
});

describe('registry ccompat gaps and their bridge', () => {
  const rest = new RegistryRestClient(settings.registry.url);
  const library = new SchemaRegistry({ host: settings.registry.url });

  beforeAll(async () => {
    await requireServer('schema registry', hostPortOf(settings.registry.url));
  });

  it('gap: GET /config/{subject} answers the global level for a subject without its own, so the library register throws', async () => {
    const subject = `test.gap-${randomUUID()}-value`;
    await rest.register(subject, schemaV1); // a subject with versions but no level of its own
    const res = await fetch(`${settings.registry.url}/config/${subject}`);
    expect(res.status).toBe(200); // Confluent: 404 (40408)
    await expect(
      library.register({ type: SchemaType.AVRO, schema: schemaV2 }, { subject, compatibility: COMPATIBILITY.BACKWARD_TRANSITIVE }),
    ).rejects.toThrow(/Compatibility does not match/);
  });

  it('bridge: registerWithLevel sets the level and registers on the same kind of subject', async () => {
    const subject = `test.gap-${randomUUID()}-value`;
    await rest.register(subject, schemaV1);
    const id = await registerWithLevel(rest, subject, schemaV2, 'BACKWARD_TRANSITIVE');
    expect(await rest.subjectLevel(subject)).toBe('BACKWARD_TRANSITIVE');
    // The id resolves through the library, so encode/decode by id works unchanged.
    const encoded = await library.encode(id, { id: 'x', n: 5 });
    expect(await library.decode(encoded)).toEqual({ id: 'x', n: 5 });
  });

  it('bridge: a new subject gets its level before its first version, and a re-registration returns the same id', async () => {
    const subject = `test.gap-${randomUUID()}-value`;
    const first = await registerWithLevel(rest, subject, schemaV1, 'FULL_TRANSITIVE');
    expect(await rest.subjectLevel(subject)).toBe('FULL_TRANSITIVE');
    expect(await registerWithLevel(rest, subject, schemaV1, 'FULL_TRANSITIVE')).toBe(first);
  });

  it('gap: verbose compatibility checks carry no messages, only the verdict', async () => {
    const subject = `test.gap-${randomUUID()}-value`;
    await registerWithLevel(rest, subject, schemaV1, 'BACKWARD');
    const incompatible = JSON.stringify({ type: 'record', name: 'Gap', namespace: 'io.sluice.test', fields: [{ name: 'id', type: 'long' }] });
    const verdict = await rest.checkCompatible(subject, incompatible);
    expect(verdict.compatible).toBe(false);
    expect(verdict.messages).toEqual([]);
  });

  it('gap: the compatibility endpoint follows the URL, not the level: .../versions/latest checks one version, .../versions all of them', async () => {
    // `third` reads schemaV2 (it has n) but not schemaV1 (no n, no default).
    const third = JSON.stringify({ type: 'record', name: 'Gap', namespace: 'io.sluice.test', fields: [{ name: 'n', type: 'long' }] });
    for (const level of ['BACKWARD', 'BACKWARD_TRANSITIVE'] as const) {
      const subject = `test.gap-${randomUUID()}-value`;
      await registerWithLevel(rest, subject, schemaV1, level);
      await registerWithLevel(rest, subject, schemaV2, level);
      expect((await rest.checkCompatible(subject, third, 'latest')).compatible).toBe(true); // Confluent: the same
      expect((await rest.checkCompatible(subject, third, 'all')).compatible).toBe(false); // Confluent: true under BACKWARD
    }
  });
});
