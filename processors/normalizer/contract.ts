import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { CompatibilityLevel } from '../core/registry/ccompat.js';
import { PermanentError } from '../core/errors/errors.js';
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

const LEVELS = ['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'];

/** The schemas/ folder shipped with Sluice: found upwards from this module (source or dist/). */
export function defaultSchemasDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schemas'))) return join(dir, 'schemas');
    if (dirname(dir) === dir) throw new PermanentError(`no schemas/ folder found above ${from}; set SLUICE_NORMALIZER_SCHEMAS_DIR`);
  }
}

/** Reads a contract folder: contract.yaml and its highest vN.avsc. */
export function loadContract(schemasDir: string, name: string): AgentEventContract {
  const dir = join(schemasDir, name);
  const where = `contract ${name} (${dir})`;
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (error) {
    throw new PermanentError(`${where}: cannot read the folder (${(error as Error).message}); check SLUICE_NORMALIZER_SCHEMAS_DIR and SLUICE_NORMALIZER_CONTRACT`);
  }
  const versions = files
    .map((f) => /^v([1-9][0-9]*)\.avsc$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const version = versions[versions.length - 1];
  if (version === undefined) throw new PermanentError(`${where}: no vN.avsc file`);

  const meta = parseYaml(readFileSync(join(dir, 'contract.yaml'), 'utf8')) as { subject?: unknown; topic?: unknown; compatibility?: unknown } | null;
  const subject = typeof meta?.subject === 'string' ? meta.subject : undefined;
  const topic = typeof meta?.topic === 'string' ? meta.topic : undefined;
  const compatibility = typeof meta?.compatibility === 'string' ? meta.compatibility.toUpperCase() : 'BACKWARD_TRANSITIVE';
  if (!subject || !topic) throw new PermanentError(`${where}: contract.yaml needs subject and topic`);
  if (!LEVELS.includes(compatibility)) throw new PermanentError(`${where}: contract.yaml compatibility ${compatibility} is not one of ${LEVELS.join(', ')}`);

  const schemaText = readFileSync(join(dir, `v${version}.avsc`), 'utf8');
  let schema: Record<string, unknown>;
  try {
    schema = JSON.parse(schemaText) as Record<string, unknown>;
  } catch (error) {
    throw new PermanentError(`${where}: v${version}.avsc is not JSON (${(error as Error).message})`);
  }
  return {
    name,
    dir,
    subject,
    topic,
    compatibility: compatibility as CompatibilityLevel,
    version,
    schema,
    schemaText,
    branches: dataBranches(schema, `${where} v${version}.avsc`),
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
