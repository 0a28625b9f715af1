import { readFileSync } from 'node:fs';
import { parseDocument, isMap, isScalar, LineCounter, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors/errors.js';

/**
 * One declared setting: its type (a zod schema that also coerces env strings), default,
 * documentation and whether it is a secret. The spec is the single place a processor's
 * configuration is described: it validates, documents (`describeSettings`) and redacts.
 */
export interface Setting<T = unknown> {
  schema: z.ZodType<T>;
  doc: string;
  /** Env var name; derived from the path when absent (kafka.brokers -> SLUICE_KAFKA_BROKERS). */
  env?: string;
  /** Raw default, parsed like an env value. */
  default?: unknown;
  secret?: boolean;
  /** Example shown in the fix when the value is bad. */
  example?: string;
  /** Added to the fix when a required setting is unset (e.g. where the local stack's value is). */
  whenUnset?: string;
}

export type SettingsSpec = { [key: string]: Setting | SettingsSpec };

export type SettingsOf<S extends SettingsSpec> = {
  [K in keyof S]: S[K] extends Setting<infer T> ? T : S[K] extends SettingsSpec ? SettingsOf<S[K]> : never;
};

export function setting<S extends z.ZodType>(
  schema: S,
  meta: Omit<Setting, 'schema' | 'default'> & { default?: z.input<S> },
): Setting<z.output<S>> {
  return { schema: schema as z.ZodType<z.output<S>>, ...meta };
}

function isSetting(x: Setting | SettingsSpec): x is Setting {
  return typeof (x as Setting).doc === 'string' && typeof (x as Setting).schema === 'object';
}

export function envNameFor(path: readonly string[]): string {
  return 'SLUICE_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** YAML or JSON file with the same nested keys as the spec; env wins over the file. */
  file?: string;
}

interface Leaf {
  path: string[];
  setting: Setting;
  env: string;
}

function leaves(spec: SettingsSpec, prefix: string[] = []): Leaf[] {
  return Object.entries(spec).flatMap(([key, value]) => {
    const path = [...prefix, key];
    return isSetting(value) ? [{ path, setting: value, env: value.env ?? envNameFor(path) }] : leaves(value, path);
  });
}

function fileValue(doc: Document | undefined, path: string[]): { value: unknown; line?: number } | undefined {
  if (!doc) return undefined;
  const node = doc.getIn(path, true);
  if (node === undefined) return undefined;
  const value = isScalar(node) ? node.value : doc.getIn(path);
  const range = (node as { range?: [number, number, number] }).range;
  return { value, line: range ? range[0] : undefined };
}

/**
 * Resolves every setting from env, then the file, then the default; validates all of them
 * and throws one ConfigError listing every problem with its source, setting and fix.
 */
export function loadSettings<S extends SettingsSpec>(spec: S, options: LoadOptions = {}): SettingsOf<S> {
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  let doc: Document | undefined;
  let lineCounter: LineCounter | undefined;
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (error) {
      throw new ConfigError([
        {
          source: `file ${options.file}`,
          setting: '(file)',
          message: `cannot read it (${(error as Error).message})`,
          fix: 'point SLUICE_CONFIG_FILE or --config at a readable YAML file',
        },
      ]);
    }
    lineCounter = new LineCounter();
    doc = parseDocument(text, { lineCounter });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw new ConfigError([
        {
          source: `file ${options.file}:${e.linePos?.[0]?.line ?? '?'}`,
          setting: '(syntax)',
          message: e.message.split('\n')[0] ?? e.message,
          fix: 'correct the YAML syntax at that line',
        },
      ]);
    }
    if (doc.contents && !isMap(doc.contents)) {
      throw new ConfigError([
        { source: `file ${options.file}`, setting: '(root)', message: 'is not a mapping', fix: 'write settings as `group: {key: value}`' },
      ]);
    }
  }

  const out: Record<string, unknown> = {};
  for (const leaf of leaves(spec)) {
    const dotted = leaf.path.join('.');
    let raw: unknown;
    let source: string;
    const fromFile = fileValue(doc, leaf.path);
    if (env[leaf.env] !== undefined && env[leaf.env] !== '') {
      raw = env[leaf.env];
      source = `env ${leaf.env}`;
    } else if (fromFile) {
      raw = fromFile.value;
      const line = fromFile.line !== undefined && lineCounter ? `:${lineCounter.linePos(fromFile.line).line}` : '';
      source = `file ${options.file}${line}`;
    } else {
      raw = leaf.setting.default;
      source = 'default';
    }
    const parsed = leaf.setting.schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const shown = leaf.setting.secret ? '(secret)' : JSON.stringify(raw);
      problems.push({
        source,
        setting: dotted,
        message: `${raw === undefined ? 'is required' : `got ${shown}`}: ${issue?.message ?? 'invalid'}`,
        fix: `set ${leaf.env}${leaf.setting.example ? `, e.g. ${leaf.env}=${leaf.setting.example}` : ''} (${leaf.setting.doc})${raw === undefined && leaf.setting.whenUnset ? `; ${leaf.setting.whenUnset}` : ''}`,
      });
      continue;
    }
    assignPath(out, leaf.path, parsed.data);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as SettingsOf<S>;
}

function assignPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** A Markdown table of the spec: env name, default and doc. Secrets show no default. */
export function describeSettings(spec: SettingsSpec): string {
  const rows = leaves(spec).map((l) => {
    const required = l.setting.default === undefined && !l.setting.schema.safeParse(undefined).success;
    const def = required ? 'required' : l.setting.secret || l.setting.default === undefined ? '' : `\`${String(l.setting.default)}\``;
    return `| \`${l.env}\` | \`${l.path.join('.')}\` | ${def} | ${l.setting.doc} |`;
  });
  return ['| env | file path | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The env names of secret settings, for log redaction. */
export function secretPaths(spec: SettingsSpec): string[] {
  return leaves(spec)
    .filter((l) => l.setting.secret)
    .map((l) => l.path.join('.'));
}
