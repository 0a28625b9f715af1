import { redpandaInterpolationHint } from './redpanda-names.js';
import { closest } from './suggest.js';

/**
 * Object key templates of the S3 output, e.g.
 * `lake/event_type=${data.event_type}/dt=${time:yyyy-MM-dd}/${topic}+${partition}+${first_offset}.parquet`.
 *
 * Grammar (after `${ENV}` interpolation, which only touches UPPER_CASE names):
 *
 *   template := ( text | "$${" | "${" variable "}" )*          "$${" is a literal "${"
 *   variable := "topic" | "partition" | "first_offset" | "last_offset"
 *             | "data." name ( "." name )*                      a field of the record
 *             | "time:" format                                  the record's event time, UTC
 *   name     := [A-Za-z_][A-Za-z0-9_]*
 *   format   := ( "yyyy" | "MM" | "dd" | "HH" | "mm" | "ss" | literal )+
 *   literal  := any character but a letter, "$" or "}"
 *
 * `topic`, `partition`, `first_offset` and `last_offset` describe the Kafka records in the
 * object (offsets of the first and last of them). `data.*` reads the record as it
 * reaches the output (after the processors). `time:` formats the field the output names
 * in `time_field`. A key must hold `${topic}`, `${partition}` and `${first_offset}` so that
 * a replay after a crash rewrites the very same objects (see objectKeyProblems).
 */

export const KAFKA_VARIABLES = ['topic', 'partition', 'first_offset', 'last_offset'] as const;
export type KafkaVariable = (typeof KAFKA_VARIABLES)[number];

export const TIME_TOKENS = ['yyyy', 'MM', 'dd', 'HH', 'mm', 'ss'] as const;
export type TimeToken = (typeof TIME_TOKENS)[number];
const TIME_TOKEN_MEANING: Record<TimeToken, string> = { yyyy: 'year', MM: 'month', dd: 'day', HH: 'hour 00-23', mm: 'minute', ss: 'second' };

export type TimePiece = { token: TimeToken } | { text: string };

export type TemplatePart =
  | { kind: 'text'; text: string; offset: number }
  | { kind: 'kafka'; name: KafkaVariable; offset: number }
  | { kind: 'field'; path: string[]; offset: number }
  | { kind: 'time'; format: TimePiece[]; offset: number };

export interface PathTemplate {
  /** The template text after env interpolation. */
  text: string;
  parts: TemplatePart[];
}

export interface TemplateError {
  /** Offset in `text` of the offending character or `${`. */
  offset: number;
  message: string;
  fix: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const VARIABLES_HELP = 'variables are ${topic}, ${partition}, ${first_offset}, ${last_offset}, ${data.<field>} and ${time:<format>}';

export function parsePathTemplate(text: string): { template: PathTemplate; errors: TemplateError[] } {
  const parts: TemplatePart[] = [];
  const errors: TemplateError[] = [];
  // After a variable that did not parse, text starts a new part: merged, `a/${bad}/b` would read as `a//b`.
  let afterInvalid = false;
  const pushText = (t: string, offset: number): void => {
    const last = parts[parts.length - 1];
    if (last?.kind === 'text' && !afterInvalid) last.text += t;
    else parts.push({ kind: 'text', text: t, offset });
    afterInvalid = false;
  };
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      pushText('${', i);
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      const next = text.indexOf('$', i + 1);
      const end = next < 0 ? text.length : next;
      pushText(text.slice(i, end), i);
      i = end;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      errors.push({ offset: i, message: 'unclosed "${"', fix: 'close the variable with "}", or write $${ for a literal ${' });
      break;
    }
    const body = text.slice(i + 2, close);
    const part = parseVariable(body, i, errors);
    if (part) parts.push(part);
    afterInvalid = !part;
    i = close + 1;
  }
  return { template: { text, parts }, errors };
}

function parseVariable(body: string, offset: number, errors: TemplateError[]): TemplatePart | undefined {
  if (body.startsWith('!')) {
    errors.push({ offset, message: `"\${${body}}" is Redpanda Connect interpolation (Bloblang)`, fix: redpandaInterpolationHint(body) });
    return undefined;
  }
  if ((KAFKA_VARIABLES as readonly string[]).includes(body)) return { kind: 'kafka', name: body as KafkaVariable, offset };
  if (body.startsWith('data.')) {
    const path = body.slice('data.'.length).split('.');
    if (path.every((p) => NAME.test(p))) return { kind: 'field', path, offset };
    errors.push({ offset, message: `"\${${body}}" is not a field path`, fix: 'write ${data.<field>} with names of letters, digits and _, e.g. ${data.event_type}' });
    return undefined;
  }
  if (body === 'time' || body.startsWith('time:')) {
    const format = body.slice('time:'.length);
    if (body === 'time' || format === '') {
      errors.push({ offset, message: '${time} needs a format', fix: 'write e.g. ${time:yyyy-MM-dd} or ${time:yyyy/MM/dd/HH}' });
      return undefined;
    }
    const pieces = parseTimeFormat(format, offset + '${time:'.length, errors);
    return pieces ? { kind: 'time', format: pieces, offset } : undefined;
  }
  const near = closest(body, KAFKA_VARIABLES);
  const fix =
    near !== undefined
      ? `did you mean \${${near}}?`
      : NAME.test(body) || /^[A-Za-z_][\w.]*$/.test(body)
        ? `record fields are written \${data.${body}}; ${VARIABLES_HELP}`
        : VARIABLES_HELP;
  errors.push({ offset, message: `unknown variable "\${${body}}"`, fix });
  return undefined;
}

function parseTimeFormat(format: string, offset: number, errors: TemplateError[]): TimePiece[] | undefined {
  const pieces: TimePiece[] = [];
  let ok = true;
  for (const m of format.matchAll(/([A-Za-z])\1*|[^A-Za-z]+/g)) {
    const run = m[0];
    if (!/^[A-Za-z]/.test(run)) {
      if (run.includes('$')) {
        errors.push({ offset: offset + m.index, message: `"$" in the time format "${format}"`, fix: 'a time format holds yyyy, MM, dd, HH, mm, ss and separators such as - / _ . =' });
        ok = false;
      }
      pieces.push({ text: run });
      continue;
    }
    if ((TIME_TOKENS as readonly string[]).includes(run)) {
      pieces.push({ token: run as TimeToken });
      continue;
    }
    ok = false;
    const near = TIME_TOKENS.find((t) => t.toLowerCase() === run.toLowerCase() || t[0]!.toLowerCase() === run[0]!.toLowerCase());
    const meaning = TIME_TOKENS.map((t) => `${t} = ${TIME_TOKEN_MEANING[t]}`).join(', ');
    errors.push({
      offset: offset + m.index,
      message: `unknown time format token "${run}" in "${format}"`,
      fix: near ? `did you mean "${near}"? tokens: ${meaning}` : `tokens: ${meaning}`,
    });
  }
  return ok ? pieces : undefined;
}

/** The text of one variable as written, for messages. */
export function partSource(part: TemplatePart): string {
  switch (part.kind) {
    case 'text':
      return part.text;
    case 'kafka':
      return `\${${part.name}}`;
    case 'field':
      return `\${data.${part.path.join('.')}}`;
    case 'time':
      return `\${time:${part.format.map((p) => ('token' in p ? p.token : p.text)).join('')}}`;
  }
}

/** The variables that make an object key deterministic from the Kafka records it holds. */
export const DETERMINISTIC_KEY_VARIABLES = ['topic', 'partition', 'first_offset'] as const;

/**
 * Rules for a template used as an S3 object key: it must name its objects by topic,
 * partition and first offset (as Kafka Connect's S3 sink does), so a batch replayed after
 * a crash is written to the key it had and overwrites, never duplicates; it must not use
 * `${last_offset}`, which depends on where a batch was cut (a period flush cuts elsewhere
 * on replay); and it must be a well-formed key (no leading `/`, no empty or `..` segments).
 */
export function objectKeyProblems(t: PathTemplate, extension = 'parquet'): TemplateError[] {
  const problems: TemplateError[] = [];
  const used = new Set(t.parts.flatMap((p) => (p.kind === 'kafka' ? [p.name] : [])));
  const missing = DETERMINISTIC_KEY_VARIABLES.filter((v) => !used.has(v));
  if (missing.length > 0) {
    problems.push({
      offset: 0,
      message: `the object key lacks ${listing(missing.map((v) => `\${${v}}`))}: keys must be deterministic (topic, partition, first offset) so a replay rewrites the same objects instead of duplicating them`,
      fix: `end the path with \${topic}+\${partition}+\${first_offset}.${extension}`,
    });
  }
  for (const p of t.parts) {
    if (p.kind === 'kafka' && p.name === 'last_offset') {
      problems.push({
        offset: p.offset,
        message: '${last_offset} makes the key depend on where a batch was cut, which differs when a replay flushes on its period at another record',
        fix: 'remove it: ${topic}+${partition}+${first_offset} already names each object uniquely',
      });
    }
  }
  const first = t.parts[0];
  if (first?.kind === 'text' && first.text.startsWith('/')) {
    problems.push({ offset: first.offset, message: 'an S3 object key must not start with "/"', fix: 'remove the leading "/"' });
  }
  for (const p of t.parts) {
    if (p.kind !== 'text') continue;
    const empty = p.text.indexOf('//');
    if (empty >= 0) problems.push({ offset: p.offset + empty, message: 'empty path segment ("//")', fix: 'remove the extra "/"' });
    for (const m of p.text.matchAll(/(?:^|\/)(\.\.?)(?=\/|$)/g)) {
      problems.push({ offset: p.offset + m.index, message: `"${m[1]}" is not a valid key segment`, fix: 'name the folder' });
    }
  }
  const last = t.parts[t.parts.length - 1];
  if (last?.kind === 'text' && last.text.endsWith('/')) {
    problems.push({
      offset: last.offset + last.text.length - 1,
      message: 'the key ends with "/", which names a folder, not an object',
      fix: `end it with a file name, e.g. \${topic}+\${partition}+\${first_offset}.${extension}`,
    });
  }
  return problems;
}

function listing(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The file extension the template ends with (`parquet` for `...+${first_offset}.parquet`), if any. */
export function templateExtension(t: PathTemplate): string | undefined {
  const last = t.parts[t.parts.length - 1];
  if (last?.kind !== 'text') return undefined;
  const m = /\.([A-Za-z0-9]+)$/.exec(last.text);
  return m && !last.text.slice(0, m.index).endsWith('/') ? m[1]!.toLowerCase() : undefined;
}

// ---------------------------------------------------------------------------------------
// Rendering (the runner's side of the same grammar)

/** How the event-time field is encoded in the record. */
export type TimeFormat = 'unix_us' | 'unix_ms' | 'unix_s' | 'rfc3339';

export interface TemplateValues {
  topic: string;
  partition: number;
  firstOffset: string | number | bigint;
  lastOffset?: string | number | bigint;
  /** The record as it reaches the output. */
  record: unknown;
  /** The record's event time in epoch milliseconds (see eventTimeMillis), when the template uses `${time:...}`. */
  eventTimeMs?: number;
}

/** A record whose values cannot form its key (an object where a path segment needs text): a DLQ case. */
export class TemplateValueError extends Error {}

/** Hive and Spark's partition value for null, which their readers turn back into null. */
export const NULL_PARTITION_VALUE = '__HIVE_DEFAULT_PARTITION__';

export function renderPathTemplate(t: PathTemplate, v: TemplateValues): string {
  let out = '';
  for (const p of t.parts) {
    switch (p.kind) {
      case 'text':
        out += p.text;
        break;
      case 'kafka':
        if (p.name === 'topic') out += v.topic;
        else if (p.name === 'partition') out += String(v.partition);
        else if (p.name === 'first_offset') out += String(v.firstOffset);
        else {
          if (v.lastOffset === undefined) throw new TemplateValueError('${last_offset} is not known yet');
          out += String(v.lastOffset);
        }
        break;
      case 'field':
        out += fieldSegment(v.record, p.path);
        break;
      case 'time':
        if (v.eventTimeMs === undefined || !Number.isFinite(v.eventTimeMs)) throw new TemplateValueError('the record has no event time');
        out += formatUtc(v.eventTimeMs, p.format);
        break;
    }
  }
  return out;
}

function fieldSegment(record: unknown, path: string[]): string {
  let value: unknown = record;
  for (const name of path) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined;
  if (value === null || value === undefined || value === '') return NULL_PARTITION_VALUE;
  if (typeof value === 'object') throw new TemplateValueError(`data.${path.join('.')} is not a scalar value`);
  return escapePathValue(String(value));
}

/** Hive's partition-value escaping (%XX for control characters and "#%'*\/:=?\\{[]^), which its readers undo. */
const NEEDS_ESCAPE = /[\u0000-\u001f\u007f"#%'*/:=?\\{[\]^]/;

export function escapePathValue(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    out += code < 0x20 || code === 0x7f || `"#%'*/:=?\\{[]^`.includes(ch) ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : ch;
  }
  return out;
}

/** The finest unit a format shows (ms), so that times within one unit share their text. */
const UNIT_MS: Record<string, number> = { yyyy: 86_400_000, MM: 86_400_000, dd: 86_400_000, HH: 3_600_000, mm: 60_000, ss: 1000 };
const formatted = new WeakMap<readonly TimePiece[], { unit: number; texts: Map<number, string> }>();

/** `format` applied to a UTC time; texts are remembered per unit of the format (a day for yyyy-MM-dd). */
export function formatUtc(epochMs: number, format: readonly TimePiece[]): string {
  let cache = formatted.get(format);
  if (!cache) {
    let unit = 86_400_000;
    for (const p of format) if (!('text' in p)) unit = Math.min(unit, UNIT_MS[p.token] ?? 1);
    cache = { unit, texts: new Map() };
    formatted.set(format, cache);
  }
  const bucket = Math.floor(epochMs / cache.unit);
  let text = cache.texts.get(bucket);
  if (text === undefined) {
    text = formatUtcNow(epochMs, format);
    if (cache.texts.size >= 10_000) cache.texts.clear();
    cache.texts.set(bucket, text);
  }
  return text;
}

function formatUtcNow(epochMs: number, format: readonly TimePiece[]): string {
  const d = new Date(epochMs);
  const two = (n: number): string => String(n).padStart(2, '0');
  return format
    .map((p) => {
      if ('text' in p) return p.text;
      switch (p.token) {
        case 'yyyy':
          return String(d.getUTCFullYear()).padStart(4, '0');
        case 'MM':
          return two(d.getUTCMonth() + 1);
        case 'dd':
          return two(d.getUTCDate());
        case 'HH':
          return two(d.getUTCHours());
        case 'mm':
          return two(d.getUTCMinutes());
        case 'ss':
          return two(d.getUTCSeconds());
      }
    })
    .join('');
}

/** Epoch milliseconds of an event-time value in the given encoding; throws TemplateValueError when it is not one. */
export function eventTimeMillis(value: unknown, format: TimeFormat): number {
  if (format === 'rfc3339') {
    const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
    if (Number.isNaN(ms)) throw new TemplateValueError(`event time ${JSON.stringify(String(value))} is not an RFC 3339 timestamp`);
    return ms;
  }
  if (typeof value === 'bigint') return format === 'unix_us' ? Number(value / 1000n) : format === 'unix_s' ? Number(value) * 1000 : Number(value);
  if (typeof value === 'number' && Number.isFinite(value)) {
    // Division, not x 0.001: an exact multiple of 1000 stays exact, so midnight stays on its day.
    return format === 'unix_us' ? Math.floor(value / 1000) : format === 'unix_s' ? Math.floor(value * 1000) : Math.floor(value);
  }
  throw new TemplateValueError(`event time ${JSON.stringify(String(value))} is not a number of ${format.slice(5)}`);
}

// ---------------------------------------------------------------------------------------
// Reading keys back (replay: which objects hold which offsets)

/** The literal start of every key the template renders: where to list. */
export function staticPrefix(t: PathTemplate): string {
  let out = '';
  for (const p of t.parts) {
    if (p.kind !== 'text') break;
    out += p.text;
  }
  return out.slice(0, out.lastIndexOf('/') + 1);
}

export interface KeyCoordinates {
  topic: string;
  partition: number;
  firstOffset: bigint;
}

/**
 * A parser of the keys the template renders, giving each key's topic, partition and first
 * offset (undefined for keys the template did not render).
 */
export function keyCoordinates(t: PathTemplate): (key: string) => KeyCoordinates | undefined {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  let source = '^';
  const seen = new Set<string>();
  for (const p of t.parts) {
    if (p.kind === 'text') source += escape(p.text);
    else if (p.kind === 'kafka') {
      const pattern = p.name === 'topic' ? '[A-Za-z0-9._-]+' : '\\d+';
      source += seen.has(p.name) ? `\\k<${p.name}>` : `(?<${p.name}>${pattern})`;
      seen.add(p.name);
    } else if (p.kind === 'field') source += '[^/]*';
    else source += '.*?';
  }
  const re = new RegExp(`${source}$`);
  return (key) => {
    const g = re.exec(key)?.groups;
    if (!g?.topic || g.partition === undefined || g.first_offset === undefined) return undefined;
    return { topic: g.topic, partition: Number(g.partition), firstOffset: BigInt(g.first_offset) };
  };
}
