import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { ROOT } from './build.js';

export const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
/** The Compose Specification's schema, vendored with its source and version (infra/compose/schema/README.md). */
export const COMPOSE_SCHEMA = join(ROOT, 'infra/compose/schema/compose-spec.json');

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  healthcheck?: { test: string[] | string; interval?: string; timeout?: string; retries?: number };
  depends_on?: Record<string, { condition: string }>;
  volumes?: (string | { source?: string; target: string })[];
  profiles?: string[];
  restart?: string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** The compose file as the compose tools read it: YAML with anchors and merge keys resolved. */
export function loadComposeFile(file = COMPOSE_FILE): ComposeFile {
  return parse(readFileSync(file, 'utf8'), { merge: true, maxAliasCount: -1 }) as ComposeFile;
}

/** Validates against the Compose Specification's JSON schema; returns the errors (none: valid). */
export function schemaErrors(doc: unknown): ErrorObject[] {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync(COMPOSE_SCHEMA, 'utf8')) as object);
  return validate(doc) ? [] : (validate.errors ?? []);
}

/** The program a health check runs: the first word of its CMD, or of its CMD-SHELL command line. */
export function healthcheckBinary(test: string[] | string): string {
  const [kind, ...rest] = typeof test === 'string' ? ['CMD-SHELL', test] : test;
  if (kind === 'CMD') return rest[0] ?? '';
  if (kind === 'CMD-SHELL') return rest.join(' ').trim().split(/\s+/)[0] ?? '';
  return '';
}
