import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../core/errors/errors.js';
import type { CommissionRules } from './commission.js';

/** The rules shipped with Sluice (docs/domain.md defaults), whether this runs from dist/processors/reports or processors/reports. */
export const DEFAULT_RULES_FILE = [
  new URL('../../../connectors/reports/commission-rules.yaml', import.meta.url),
  new URL('../../connectors/reports/commission-rules.yaml', import.meta.url),
]
  .map((u) => fileURLToPath(u))
  .find((f) => existsSync(f)) ?? fileURLToPath(new URL('../../../connectors/reports/commission-rules.yaml', import.meta.url));

const FIELDS = ['version', 'bonus_per_customer_minor', 'net_deposit_rate_bp', 'investment_rate_bp', 'tier_threshold_minor', 'tier_multiplier'] as const;

/**
 * Loads commission rules from a YAML file. Every problem names the file, the line, the
 * field and the fix; integers are read exactly (as text, into BigInt).
 */
export function loadRules(file: string = DEFAULT_RULES_FILE): CommissionRules {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ source: `file ${file}`, setting: '(file)', message: `cannot read it (${(error as Error).message})`, fix: 'point SLUICE_REPORTS_RULES_FILE at a readable rules file' }]);
  }
  const doc = parseDocument(text, { intAsBigInt: true });
  const problems: ConfigProblem[] = [];
  const at = (field: string) => {
    const node = doc.get(field, true) as { range?: [number, number] } | undefined;
    const line = node?.range ? text.slice(0, node.range[0]).split('\n').length : 1;
    return `file ${file}:${line}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ source: `file ${file}:${e.linePos?.[0]?.line ?? 1}`, setting: '(yaml)', message: e.message, fix: 'write valid YAML' })));
  }
  const raw = (doc.toJS() ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(FIELDS as readonly string[]).includes(key)) problems.push({ source: at(key), setting: key, message: 'unknown field', fix: `the fields are ${FIELDS.join(', ')}` });
  }
  const integer = (field: string, min: bigint): bigint => {
    const v = raw[field];
    if (typeof v !== 'bigint' || v < min) {
      problems.push({ source: at(field), setting: field, message: v === undefined ? 'missing' : `got ${String(v)}`, fix: `write an integer >= ${min}` });
      return 0n;
    }
    return v;
  };
  const version = raw.version;
  if (typeof version !== 'string' || version.trim() === '') problems.push({ source: at('version'), setting: 'version', message: 'missing or not text', fix: 'name this rule set, e.g. version: 2026-01' });
  const rules: CommissionRules = {
    version: String(version),
    bonusPerCustomerMinor: integer('bonus_per_customer_minor', 0n),
    netDepositRateBp: integer('net_deposit_rate_bp', 0n),
    investmentRateBp: integer('investment_rate_bp', 0n),
    tierThresholdMinor: integer('tier_threshold_minor', 0n),
    tierMultiplier: { numerator: 1n, denominator: 1n },
  };
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(String(raw.tier_multiplier ?? ''));
  if (!m || BigInt(m[2]!) === 0n) problems.push({ source: at('tier_multiplier'), setting: 'tier_multiplier', message: `got ${String(raw.tier_multiplier)}`, fix: 'write a fraction such as 5/4' });
  else rules.tierMultiplier = { numerator: BigInt(m[1]!), denominator: BigInt(m[2]!) };
  const line = (p: ConfigProblem) => Number(p.source.slice(p.source.lastIndexOf(':') + 1));
  if (problems.length > 0) throw new ConfigError(problems.sort((a, b) => line(a) - line(b)));
  return rules;
}
