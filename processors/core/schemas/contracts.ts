import avro from 'avsc';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { isMap, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { PermanentError } from '../errors/errors.js';
import type { CompatibilityLevel } from '../registry/ccompat.js';
import { COMPATIBILITY_LEVELS } from './compatibility.js';

/**
 * The contracts under a schemas folder: `schemas/<contract>/contract.yaml` (subject, topic,
 * compatibility level) beside the versions `v1.avsc`, `v2.avsc`, ... (the highest is the
 * current one). Loading validates all of it and reports every problem at once, each naming
 * the file (and line and key where there is one).
 */

export const CONTRACT_FILE = 'contract.yaml';
export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD_TRANSITIVE';
const VERSION_FILE = /^v([1-9][0-9]*)\.avsc$/;

export interface SchemaVersion {
  /** N of vN.avsc. */
  version: number;
  /** Absolute path. */
  path: string;
  /** Path for messages: relative to the working directory when under it. */
  file: string;
  text: string;
  type: avro.Type;
}

export interface Contract {
  /** The folder's name, e.g. `agent-event`. */
  name: string;
  /** Absolute path of the folder. */
  dir: string;
  /** Display path of contract.yaml. */
  contractFile: string;
  subject: string;
  topic: string;
  compatibility: CompatibilityLevel;
  /** v1..vN in order; never empty. */
  versions: SchemaVersion[];
}

export interface SchemaProblem {
  /** Display path, with `:line` when known. */
  file: string;
  /** The offending key of contract.yaml, when there is one. */
  key?: string | undefined;
  message: string;
}

/** The schemas folder is not a valid set of contracts; lists every problem found. */
export class SchemaContractError extends PermanentError {
  constructor(readonly problems: readonly SchemaProblem[]) {
    super(
      'invalid schema contracts:\n' +
        problems.map((p) => `  - ${p.file}: ${p.key ? `${p.key}: ` : ''}${p.message}`).join('\n'),
    );
  }
}

/** Relative to the working directory when the file is under it, else absolute. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

const requiredString = (missing: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? missing : 'must be a string') })
    .trim()
    .min(1, 'must not be empty');

const contractSchema = z
  .object({
    subject: requiredString('is required: the registry subject, e.g. sluice.agent-events-value'),
    topic: requiredString('is required: the Kafka topic the contract is published on, e.g. sluice.agent-events'),
    compatibility: z
      .enum(COMPATIBILITY_LEVELS, { error: `must be one of ${COMPATIBILITY_LEVELS.join(', ')}` })
      .default(DEFAULT_COMPATIBILITY),
  })
  .strict();

/**
 * Loads every contract under `schemasDir` (each subfolder holding a contract.yaml or .avsc
 * files), sorted by folder name. Throws one SchemaContractError listing every problem.
 */
export function loadContracts(schemasDir: string): Contract[] {
  const root = resolve(schemasDir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new SchemaContractError([{ file: displayPath(root), message: 'is not a folder (point --dir at the schemas folder)' }]);
  }
  const problems: SchemaProblem[] = [];
  const contracts: Contract[] = [];
  const folders = readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  for (const name of folders) {
    const dir = join(root, name);
    const files = readdirSync(dir);
    if (!files.includes(CONTRACT_FILE) && !files.some((f) => f.endsWith('.avsc'))) continue;
    const contract = loadContract(dir, name, files, problems);
    if (contract) contracts.push(contract);
  }
  if (contracts.length === 0 && problems.length === 0) {
    problems.push({ file: displayPath(root), message: `holds no contract (expected <contract>/${CONTRACT_FILE} with v1.avsc beside it)` });
  }
  const bySubject = new Map<string, Contract>();
  for (const c of contracts) {
    const other = bySubject.get(c.subject);
    if (other) problems.push({ file: c.contractFile, key: 'subject', message: `${c.subject} is already the subject of ${other.contractFile}` });
    else bySubject.set(c.subject, c);
  }
  if (problems.length > 0) throw new SchemaContractError(problems);
  return contracts;
}

function loadContract(dir: string, name: string, files: string[], problems: SchemaProblem[]): Contract | undefined {
  const before = problems.length;
  const contractPath = join(dir, CONTRACT_FILE);
  const contractFile = displayPath(contractPath);
  let meta: z.output<typeof contractSchema> | undefined;
  if (!files.includes(CONTRACT_FILE)) {
    problems.push({ file: contractFile, message: 'is missing (it names the subject, topic and compatibility level of the .avsc files beside it)' });
  } else {
    meta = readContractYaml(contractPath, contractFile, problems);
  }

  const versions: SchemaVersion[] = [];
  for (const f of files.filter((f) => f.endsWith('.avsc')).sort()) {
    const m = VERSION_FILE.exec(f);
    if (!m) {
      problems.push({ file: displayPath(join(dir, f)), message: 'is not named vN.avsc (v1.avsc, v2.avsc, ...): rename it' });
      continue;
    }
    const version = Number(m[1]);
    const path = join(dir, f);
    const file = displayPath(path);
    const text = readFileSync(path, 'utf8');
    const parsed = parseAvroSchema(text);
    if ('error' in parsed) {
      problems.push({ file: parsed.line ? `${file}:${parsed.line}` : file, message: parsed.error });
      continue;
    }
    versions.push({ version, path, file, text, type: parsed.type });
  }
  versions.sort((a, b) => a.version - b.version);
  const numbers = files.map((f) => VERSION_FILE.exec(f)?.[1]).filter((n): n is string => n !== undefined).map(Number).sort((a, b) => a - b);
  if (numbers.length === 0) {
    problems.push({ file: displayPath(dir), message: 'has no schema version (expected v1.avsc)' });
  } else {
    const missing = [];
    for (let n = 1; n <= numbers[numbers.length - 1]!; n++) if (!numbers.includes(n)) missing.push(`v${n}.avsc`);
    if (missing.length > 0) {
      problems.push({ file: displayPath(dir), message: `versions must be contiguous from v1: missing ${missing.join(', ')}` });
    }
  }
  if (problems.length > before || !meta) return undefined;
  return { name, dir, contractFile, subject: meta.subject, topic: meta.topic, compatibility: meta.compatibility, versions };
}

function readContractYaml(path: string, file: string, problems: SchemaProblem[]): z.output<typeof contractSchema> | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(readFileSync(path, 'utf8'), { lineCounter });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    problems.push({ file: `${file}:${e.linePos?.[0]?.line ?? '?'}`, message: `YAML syntax: ${e.message.split('\n')[0]}` });
    return undefined;
  }
  if (!isMap(doc.contents)) {
    problems.push({ file, message: 'must be a mapping with subject, topic and compatibility' });
    return undefined;
  }
  const parsed = contractSchema.safeParse(doc.toJS());
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [issue.path.join('.')];
    for (const key of keys) {
      const node = doc.getIn(key.split('.'), true) as { range?: [number, number, number] } | undefined;
      const keyNode = doc.contents.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === key)?.key as { range?: [number, number, number] } | undefined;
      const offset = (issue.code === 'unrecognized_keys' ? keyNode : node ?? keyNode)?.range?.[0];
      const where = offset === undefined ? file : `${file}:${lineCounter.linePos(offset).line}`;
      const message =
        issue.code === 'unrecognized_keys'
          ? 'is not a contract key (allowed: subject, topic, compatibility)'
          : issue.code === 'invalid_value' || issue.code === 'invalid_type'
            ? `${describeValue(doc.getIn(key.split('.')))}${issue.message}`
            : issue.message;
      problems.push({ file: where, key, message });
    }
  }
  return undefined;
}

function describeValue(value: unknown): string {
  return value === undefined ? '' : `got ${JSON.stringify(value)}: `;
}

/** Parses an .avsc text: JSON first (with the line of a syntax error), then avsc. */
export function parseAvroSchema(text: string): { type: avro.Type } | { error: string; line?: number } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // V8 quotes the whole text after some messages; the line number says where instead.
    const message = (error as Error).message.replace(/, (?:"|\.\.\.).*" is not valid JSON$/s, '');
    const pos = /position (\d+)/.exec(message)?.[1];
    const line = pos === undefined ? undefined : text.slice(0, Number(pos)).split('\n').length;
    return { error: `is not valid JSON: ${message}`, ...(line === undefined ? {} : { line }) };
  }
  try {
    return { type: avro.Type.forSchema(json as avro.Schema) };
  } catch (error) {
    return { error: `is not a valid Avro schema: ${(error as Error).message}` };
  }
}
