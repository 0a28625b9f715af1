import { redpandaInterpolationHint } from './redpanda-names.js';

/**
 * `${ENV}` and `${ENV:default}` in pipeline files, resolved value by value after the YAML
 * is parsed, so every problem keeps its line and column.
 *
 * Only UPPER_CASE names are environment variables (`[A-Z_][A-Z0-9_]*`): `${topic}`,
 * `${data.event_type}` and `${time:yyyy-MM-dd}` belong to path templates (see
 * path-template.ts) and are left for them. `$${` writes a literal `${`. A variable that
 * is unset or empty takes the default; unset without a default is an error. A default
 * runs to the first `}` and may hold `:` (`${SLUICE_KAFKA_BROKERS:localhost:9092}`).
 */

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * How a value treats `${...}` that is not an environment variable:
 * - `plain`: an error (most likely a mistyped variable), and `$${` unescapes to `${`;
 * - `template`: kept, with `$${`, for the path template parser;
 * - `expression`: kept as written (JSONata text is the expression library's to judge).
 */
export type InterpolationMode = 'plain' | 'template' | 'expression';

export interface Interpolated {
  text: string;
  /** Offset in the original text of the character at `offset` in `text` (a substituted value maps to its `${`). */
  rawOffset(offset: number): number;
}

export interface InterpolationIssue {
  /** Offset of the `${` in the original text. */
  offset: number;
  message: string;
  fix: string;
}

const ENV_REFERENCE = /^([A-Z_][A-Z0-9_]*)(?::([\s\S]*))?$/;

interface Segment {
  out: number;
  raw: number;
  length: number;
  substituted: boolean;
}

export function interpolateEnv(raw: string, env: Env, mode: InterpolationMode): { result: Interpolated; issues: InterpolationIssue[] } {
  const issues: InterpolationIssue[] = [];
  const segments: Segment[] = [];
  let out = '';
  const emit = (text: string, rawStart: number, substituted: boolean): void => {
    if (text.length === 0) return;
    segments.push({ out: out.length, raw: rawStart, length: text.length, substituted });
    out += text;
  };
  let i = 0;
  while (i < raw.length) {
    if (raw.startsWith('$${', i)) {
      if (mode === 'plain') emit('${', i + 1, false);
      else emit('$${', i, false);
      i += 3;
      continue;
    }
    if (raw.startsWith('${', i)) {
      const close = raw.indexOf('}', i + 2);
      if (close < 0) {
        if (mode === 'plain') issues.push({ offset: i, message: 'unclosed "${"', fix: 'close the reference with "}", or write $${ for a literal ${' });
        emit(raw.slice(i), i, false);
        break;
      }
      const body = raw.slice(i + 2, close);
      const reference = ENV_REFERENCE.exec(body);
      if (reference) {
        const name = reference[1]!;
        const fallback = reference[2];
        if (fallback?.includes('${')) {
          issues.push({ offset: i, message: `the default of \${${name}} holds a reference, which is not supported`, fix: 'write a literal default, or set the variable' });
        }
        let value = env[name];
        if (value === undefined || value === '') {
          if (fallback !== undefined) value = fallback;
          else if (value === undefined) {
            issues.push({
              offset: i,
              message: `environment variable ${name} is not set and \${${name}} has no default`,
              fix: `set ${name}, or give a default: \${${name}:value}`,
            });
            value = '';
          }
        }
        emit(value, i, true);
      } else {
        if (mode === 'plain' && body.startsWith('!')) {
          issues.push({ offset: i, message: `"\${${body}}" is Redpanda Connect interpolation (Bloblang), which plain values do not take`, fix: `write the value itself, or \${ENV_VAR}; ${redpandaInterpolationHint(body)}` });
        } else if (mode === 'plain') {
          const upper = body.replace(/^[^:]*/, (name) => name.toUpperCase().replace(/[^A-Z0-9_]/g, '_'));
          issues.push({
            offset: i,
            message: `"\${${body}}" is not an environment variable reference (their names are UPPER_CASE)`,
            fix: `write \${${upper}} for an environment variable, or $\${${body}} for the literal text`,
          });
        }
        emit(raw.slice(i, close + 1), i, false);
      }
      i = close + 1;
      continue;
    }
    const next = raw.indexOf('$', i + 1);
    const end = next < 0 ? raw.length : next;
    emit(raw.slice(i, end), i, false);
    i = end;
  }
  const rawOffset = (offset: number): number => {
    for (const s of segments) {
      if (offset < s.out + s.length) return s.substituted ? s.raw : s.raw + Math.max(0, offset - s.out);
    }
    const last = segments[segments.length - 1];
    return last ? (last.substituted ? last.raw : last.raw + last.length) : 0;
  };
  return { result: { text: out, rawOffset }, issues };
}
