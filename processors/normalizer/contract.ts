import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompatibilityLevel } from '../core/registry/ccompat.js';
import { PermanentError } from '../core/errors/errors.js';
import { loadContracts, type Contract } from '../core/schemas/contracts.js';
import { EVENT_TYPES, type EventType } from './rules.js';

/**
 * The agent-event contract as the normalizer writes it: the highest vN.avsc of the
 * contract folder (so a new compatible version flows without code changes), where it is
 * published (contract.yaml) and, per event type, the `data` union branch to write.
 */
export interface AgentEventContract {
  name: string;
  dir: string;
  subject: string;
  topic: string;
  compatibility: CompatibilityLevel;
  /** N of vN.avsc: written into each event's schema_version. */
  version: number;
  schema: Record<string, unknown>;
  /** The schema text registered (the file as is). */
  schemaText: string;
  /** Full name of the `data` union branch per event type, e.g. io.sluice.events.DepositMade. */
  branches: Record<EventType, string>;
}

/** The schemas/ folder shipped with Sluice: found upwards from this module (source or dist/). */
export function defaultSchemasDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schemas'))) return join(dir, 'schemas');
    if (dirname(dir) === dir) throw new PermanentError(`no schemas/ folder found above ${from}; set SLUICE_NORMALIZER_SCHEMAS_DIR`);
  }
}

/**
 * The contract folder `name` as the shared loader reads and validates it (the same rules
 * as `sluice schemas check`), with its highest version as the one to write.
 */
export function loadContract(schemasDir: string, name: string): AgentEventContract {
  const where = `contract ${name} (${join(schemasDir, name)})`;
  let contract: Contract | undefined;
  try {
    contract = loadContracts(schemasDir).find((c) => c.name === name);
  } catch (error) {
    throw new PermanentError(`${where}: ${(error as Error).message}; check SLUICE_NORMALIZER_SCHEMAS_DIR and SLUICE_NORMALIZER_CONTRACT`, { cause: error });
  }
  if (!contract) throw new PermanentError(`${where}: no such contract folder; check SLUICE_NORMALIZER_SCHEMAS_DIR and SLUICE_NORMALIZER_CONTRACT`);
  const current = contract.versions[contract.versions.length - 1]!;
  const schema = JSON.parse(current.text) as Record<string, unknown>;
  return {
    name,
    dir: contract.dir,
    subject: contract.subject,
    topic: contract.topic,
    compatibility: contract.compatibility,
    version: current.version,
    schema,
    schemaText: current.text,
    branches: dataBranches(schema, `${where} v${current.version}.avsc`),
  };
}

/**
 * Finds, for each event type, the record of the `data` union named after it in
 * PascalCase (deposit_made -> DepositMade). A version without a branch for a type is a
 * contract the normalizer cannot write: it stops at start, naming the type.
 */
export function dataBranches(schema: Record<string, unknown>, where = 'schema'): Record<EventType, string> {
  const namespace = typeof schema.namespace === 'string' ? schema.namespace : '';
  const fields = Array.isArray(schema.fields) ? (schema.fields as { name?: unknown; type?: unknown }[]) : [];
  const data = fields.find((f) => f.name === 'data');
  if (!data || !Array.isArray(data.type)) throw new PermanentError(`${where}: no \`data\` union field`);
  const names = new Map<string, string>();
  for (const branch of data.type as unknown[]) {
    if (!branch || typeof branch !== 'object' || typeof (branch as { name?: unknown }).name !== 'string') continue;
    const b = branch as { name: string; namespace?: string };
    const full = b.name.includes('.') ? b.name : `${b.namespace ?? namespace}${(b.namespace ?? namespace) ? '.' : ''}${b.name}`;
    names.set(full.slice(full.lastIndexOf('.') + 1), full);
  }
  const out = {} as Record<EventType, string>;
  for (const type of EVENT_TYPES) {
    const short = type
      .split('_')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('');
    const full = names.get(short);
    if (!full) throw new PermanentError(`${where}: the data union has no ${short} record for event type ${type}`);
    out[type] = full;
  }
  return out;
}
