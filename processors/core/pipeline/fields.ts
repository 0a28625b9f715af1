import type { ExpressionLanguage } from './expressions.js';
import { BLOBLANG_FIX, looksLikeBloblang, redpandaFieldHint } from './redpanda-names.js';
import { interpolateEnv, type Env, type InterpolationMode } from './interpolation.js';
import { objectKeyProblems, parsePathTemplate, type PathTemplate } from './path-template.js';
import type { PipelineProblem } from './problems.js';
import { describeNode, syntheticNode, type ConfigNode, type Origin, type Pos } from './source.js';
import { suggestion } from './suggest.js';
import { BYTE_SIZE_FIX, DURATION_FIX, formatByteSize, formatDuration, parseByteSize, parseDuration } from './units.js';

/**
 * The field vocabulary component specs are written in, after Redpanda Connect's
 * `docs.Field*`: each field knows its type, doc, default (written as in YAML), the env
 * vars that default it, and examples. The same declaration parses a node (with every
 * problem at its line and config path), documents itself (docs.ts) and types the loaded
 * config (`Infer<typeof field>`).
 */

export const INVALID = Symbol('invalid');
export type Invalid = typeof INVALID;

/** Path segments: `output`, `s3`, `path`; list items as `[0]`. */
export type Path = readonly string[];

export function pathText(path: Path): string {
  return path.reduce((acc, seg) => (seg.startsWith('[') ? acc + seg : acc ? `${acc}.${seg}` : seg), '');
}

export interface At {
  path: Path;
  /** Where to report a problem about a missing value: the key that owns it. */
  pos: Pos;
}

export class ParseContext {
  readonly problems: PipelineProblem[] = [];
  /** File position of every value present in the file, by config path text. */
  readonly positions = new Map<string, Pos>();
  /** For string values: offset in the interpolated text -> file position, by config path text. */
  readonly locators = new Map<string, (offset: number) => Pos>();

  constructor(
    readonly file: string,
    readonly env: Env,
    readonly expressions: ExpressionLanguage | undefined,
  ) {}

  report(pos: Pos, path: Path, message: string, fix: string): void {
    this.problems.push({ file: this.file, line: pos.line, column: pos.column, path: pathText(path), message, fix });
  }

  /** The position of the value at `path`, else of its nearest ancestor present in the file. */
  locate(path: Path): Pos {
    for (let n = path.length; n > 0; n--) {
      const pos = this.positions.get(pathText(path.slice(0, n)));
      if (pos) return pos;
    }
    return { line: 1, column: 1 };
  }
}

export interface FieldMeta {
  doc: string;
  /** The default as it would be written in YAML (`'1s'`, `'64MiB'`, `true`). */
  default?: unknown;
  /** Docs text for a default computed from other fields. */
  defaultDoc?: string;
  /** Env vars whose value (first set and non-empty) is the default. */
  env?: readonly string[];
  /** May be absent with no default: the value is then `undefined`. */
  optional?: boolean;
  /** Never echoed in messages; its default is not shown in docs. */
  secret?: boolean;
  examples?: readonly unknown[];
}

export type FieldKind = 'string' | 'int' | 'bool' | 'enum' | 'duration' | 'bytes' | 'regex' | 'expression' | 'template' | 'list' | 'object' | 'map';

export interface Field<T> {
  readonly kind: FieldKind;
  /** The type as docs show it: `string`, `duration`, `list of string`, `object`. */
  readonly type: string;
  readonly meta: FieldMeta;
  readonly fields?: Readonly<Record<string, AnyField>>;
  readonly item?: AnyField;
  readonly values?: readonly string[];
  /** Parses a value that is present (not null). */
  parseNode(node: ConfigNode, at: At, ctx: ParseContext): T | Invalid;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyField = Field<any>;
export type Infer<F> = F extends Field<infer T> ? T : never;
type Opt<M, T> = M extends { optional: true } ? T | undefined : T;

/** Whether a missing value is an error: no default, no env default, not optional, and (objects) some required field. */
export function isRequired(field: AnyField): boolean {
  if (field.meta.optional || field.meta.default !== undefined) return false;
  // A component choice (no declared fields) is required; an object is when one of its fields is.
  if (field.kind === 'object' && field.fields) return Object.values(field.fields).some(isRequired);
  return true;
}

/** Whether a missing value is an error even when every env var a field may take is considered. */
function requiredBeyondEnv(field: AnyField): boolean {
  if (field.meta.env?.length) return false;
  if (field.meta.optional || field.meta.default !== undefined) return false;
  if (field.kind === 'object' && field.fields) return Object.values(field.fields).some(requiredBeyondEnv);
  return true;
}

/**
 * A field's value from its node, else its env default, its default, `undefined` when
 * optional, or a "missing required field" problem.
 */
export function resolveField<T>(field: Field<T>, node: ConfigNode | undefined, at: At, ctx: ParseContext): T | Invalid {
  if (node && !(node.kind === 'scalar' && node.value === null)) {
    // An object is best pointed at by its key; a scalar or list by its value.
    ctx.positions.set(pathText(at.path), node.kind === 'map' ? at.pos : node.pos);
    return field.parseNode(node, at, ctx);
  }
  if (node && field.kind === 'object' && field.fields && !field.meta.optional) {
    // `kafka:` with nothing under it: an object of defaults, so the fields it lacks are named.
    return field.parseNode({ kind: 'map', pos: at.pos, origin: node.origin, entries: [] }, at, ctx);
  }
  for (const name of field.meta.env ?? []) {
    const value = ctx.env[name];
    if (value !== undefined && value !== '') return field.parseNode(syntheticNode(value, at.pos, { from: 'env', name }), at, ctx);
  }
  if (field.meta.default !== undefined) return field.parseNode(syntheticNode(field.meta.default, at.pos, { from: 'default' }), at, ctx);
  if (field.meta.optional) return undefined as T;
  // An absent object whose required fields all have env vars (registry.url: SLUICE_SCHEMA_REGISTRY_URL)
  // is read as empty, so a missing one is named with its env var.
  if (field.kind === 'object' && !requiredBeyondEnv(field)) return field.parseNode(syntheticNode({}, at.pos, { from: 'default' }), at, ctx);
  const name = at.path[at.path.length - 1] ?? '';
  const example = field.meta.examples?.[0];
  const env = field.meta.env?.length ? `set ${field.meta.env.join(' or ')}, or ` : '';
  ctx.report(
    at.pos,
    at.path,
    `missing required field "${name}"`,
    example !== undefined ? `${env}add it, e.g. ${name}: ${inlineYaml(example)}` : `${env}add ${name} (${field.meta.doc})`,
  );
  return INVALID;
}

/** A value as one line of YAML flow style, for fixes and docs. */
export function inlineYaml(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inlineYaml).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${k}: ${inlineYaml(v)}`).join(', ')}}`;
  }
  if (typeof value === 'string') {
    const plain = /^[A-Za-z0-9_./+=@^-][A-Za-z0-9_./+=@:*^ -]*$/.test(value) && !value.endsWith(' ') && !/^(true|false|null|~|[-+]?\d[\d_]*(\.\d*)?)$/i.test(value);
    return plain ? value : JSON.stringify(value);
  }
  return String(value);
}

function fail(ctx: ParseContext, node: ConfigNode, at: At, message: string, fix: string): Invalid {
  const from = node.origin.from === 'env' ? ` (from environment variable ${node.origin.name})` : node.origin.from === 'default' ? ' (the default)' : node.origin.from === 'flag' ? ` (from --set ${node.origin.text})` : '';
  ctx.report(node.pos, at.path, message + from, fix);
  return INVALID;
}

function withExample(fix: string, meta: FieldMeta): string {
  const example = meta.examples?.[0];
  return example !== undefined ? `${fix}, e.g. ${inlineYaml(example)}` : fix;
}

interface Text {
  text: string;
  /** File position of the character at `offset` in `text`. */
  pos(offset: number): Pos;
}

/** A scalar's text after env interpolation; numbers and booleans as written. */
function scalarText(node: ConfigNode, at: At, ctx: ParseContext, mode: InterpolationMode, meta: FieldMeta, expected: string): Text | Invalid {
  if (node.kind !== 'scalar') return fail(ctx, node, at, `expected ${expected}, got ${describeNode(node)}`, withExample(`write ${expected}`, meta));
  const value = node.value;
  if (typeof value !== 'string' || node.origin.from !== 'file' || node.origin.interpolated) return { text: String(value), pos: () => node.pos };
  const { result, issues } = interpolateEnv(value, ctx.env, mode);
  for (const issue of issues) ctx.report(node.at(issue.offset), at.path, issue.message, issue.fix);
  if (issues.length > 0) return INVALID;
  return { text: result.text, pos: (offset) => node.at(result.rawOffset(offset)) };
}

/** describeNode for text that went through interpolation (the node holds the raw text). */
function shown(text: string, meta: FieldMeta): string {
  if (meta.secret) return 'a value (not shown: secret)';
  return `"${text.length > 60 ? `${text.slice(0, 57)}...` : text}"`;
}

function build<T>(field: Omit<Field<T>, 'parseNode'>, parseNode: Field<T>['parseNode']): Field<T> {
  return { ...field, parseNode };
}

// ---------------------------------------------------------------------------------------
// Scalars

export interface StringMeta extends FieldMeta {
  pattern?: RegExp;
  /** The fix when the pattern does not match. */
  patternFix?: string;
  minLength?: number;
}

export function string<const M extends StringMeta>(meta: M): Field<Opt<M, string>> {
  return build<string>({ kind: 'string', type: 'string', meta }, (node, at, ctx) => {
    const t = scalarText(node, at, ctx, 'plain', meta, 'text');
    if (t === INVALID) return INVALID;
    if (meta.minLength !== undefined && t.text.length < meta.minLength) {
      return fail(ctx, node, at, t.text === '' ? 'must not be empty' : `must be at least ${meta.minLength} characters`, withExample('write a value', meta));
    }
    if (meta.pattern && !meta.pattern.test(t.text)) {
      return fail(ctx, node, at, `${shown(t.text, meta)} is not valid here`, withExample(meta.patternFix ?? `match ${meta.pattern.source}`, meta));
    }
    return t.text;
  }) as Field<Opt<M, string>>;
}

export interface IntMeta extends FieldMeta {
  min?: number;
  max?: number;
}

export function int<const M extends IntMeta>(meta: M): Field<Opt<M, number>> {
  return build<number>({ kind: 'int', type: 'integer', meta }, (node, at, ctx) => {
    let n: number | undefined;
    if (node.kind === 'scalar' && typeof node.value === 'number') n = node.value;
    else if (node.kind === 'scalar' && typeof node.value === 'string') {
      const t = scalarText(node, at, ctx, 'plain', meta, 'a whole number');
      if (t === INVALID) return INVALID;
      if (/^-?\d[\d_]*$/.test(t.text.trim())) n = Number(t.text.trim().replaceAll('_', ''));
      else return fail(ctx, node, at, `expected a whole number, got ${shown(t.text, meta)}`, withExample('write a whole number', meta));
    } else return fail(ctx, node, at, `expected a whole number, got ${describeNode(node)}`, withExample('write a whole number', meta));
    if (!Number.isSafeInteger(n)) return fail(ctx, node, at, `expected a whole number, got ${n}`, withExample('write a whole number', meta));
    if (meta.min !== undefined && n < meta.min) return fail(ctx, node, at, `must be at least ${meta.min}, got ${n}`, withExample(`write a number >= ${meta.min}`, meta));
    if (meta.max !== undefined && n > meta.max) return fail(ctx, node, at, `must be at most ${meta.max}, got ${n}`, withExample(`write a number <= ${meta.max}`, meta));
    return n;
  }) as Field<Opt<M, number>>;
}

export function bool<const M extends FieldMeta>(meta: M): Field<Opt<M, boolean>> {
  return build<boolean>({ kind: 'bool', type: 'bool', meta }, (node, at, ctx) => {
    if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value;
    const t = scalarText(node, at, ctx, 'plain', meta, 'true or false');
    if (t === INVALID) return INVALID;
    const text = t.text.trim().toLowerCase();
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    return fail(ctx, node, at, `expected true or false, got ${shown(t.text, meta)}`, 'write true or false');
  }) as Field<Opt<M, boolean>>;
}

export function oneOf<const V extends readonly string[], const M extends FieldMeta>(values: V, meta: M): Field<Opt<M, V[number]>> {
  return build<V[number]>({ kind: 'enum', type: 'enum', meta, values }, (node, at, ctx) => {
    const t = scalarText(node, at, ctx, 'plain', meta, `one of ${values.join(', ')}`);
    if (t === INVALID) return INVALID;
    if ((values as readonly string[]).includes(t.text)) return t.text;
    const near = suggestion(t.text, values, 'use one of');
    return fail(ctx, node, at, `unknown value ${shown(t.text, meta)}`, near.startsWith('did you mean') ? `${near} allowed: ${values.join(', ')}` : near);
  }) as Field<Opt<M, V[number]>>;
}

export interface DurationMeta extends FieldMeta {
  /** Smallest allowed value in milliseconds. */
  min?: number;
}

/** A duration; the loaded value is in milliseconds. */
export function duration<const M extends DurationMeta>(meta: M): Field<Opt<M, number>> {
  return build<number>({ kind: 'duration', type: 'duration', meta }, (node, at, ctx) => {
    if (node.kind === 'scalar' && typeof node.value === 'number') {
      return fail(ctx, node, at, `${node.value} has no unit`, `${DURATION_FIX}: write ${node.value}s or ${node.value}ms`);
    }
    const t = scalarText(node, at, ctx, 'plain', meta, 'a duration');
    if (t === INVALID) return INVALID;
    const ms = parseDuration(t.text);
    if (ms === undefined) return fail(ctx, node, at, `${shown(t.text, meta)} is not a duration`, DURATION_FIX);
    if (meta.min !== undefined && ms < meta.min) return fail(ctx, node, at, `must be at least ${formatDuration(meta.min)}, got ${t.text}`, `write a duration of ${formatDuration(meta.min)} or more`);
    return ms;
  }) as Field<Opt<M, number>>;
}

export interface ByteSizeMeta extends FieldMeta {
  min?: number;
  max?: number;
}

/** A size; the loaded value is in bytes. */
export function byteSize<const M extends ByteSizeMeta>(meta: M): Field<Opt<M, number>> {
  return build<number>({ kind: 'bytes', type: 'byte size', meta }, (node, at, ctx) => {
    let text: string | number;
    if (node.kind === 'scalar' && typeof node.value === 'number') text = node.value;
    else {
      const t = scalarText(node, at, ctx, 'plain', meta, 'a size');
      if (t === INVALID) return INVALID;
      text = t.text;
    }
    const bytes = parseByteSize(text);
    if (bytes === undefined) return fail(ctx, node, at, `${shown(String(text), meta)} is not a size`, BYTE_SIZE_FIX);
    if (meta.min !== undefined && bytes < meta.min) return fail(ctx, node, at, `must be at least ${formatByteSize(meta.min)}, got ${text}`, `write ${formatByteSize(meta.min)} or more`);
    if (meta.max !== undefined && bytes > meta.max) return fail(ctx, node, at, `must be at most ${formatByteSize(meta.max)}, got ${text}`, `write ${formatByteSize(meta.max)} or less`);
    return bytes;
  }) as Field<Opt<M, number>>;
}

/** A JavaScript regular expression; the loaded value is its source text. */
export function regex<const M extends FieldMeta>(meta: M): Field<Opt<M, string>> {
  return build<string>({ kind: 'regex', type: 'regex', meta }, (node, at, ctx) => {
    const t = scalarText(node, at, ctx, 'plain', meta, 'a regular expression');
    if (t === INVALID) return INVALID;
    try {
      new RegExp(t.text);
    } catch (error) {
      return fail(ctx, node, at, `invalid regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, '')}`, withExample('write a JavaScript regular expression', meta));
    }
    return t.text;
  }) as Field<Opt<M, string>>;
}

/** An expression (JSONata), compiled at lint time when the library is available; the loaded value is its text. */
export function expression<const M extends FieldMeta>(meta: M): Field<Opt<M, string>> {
  return build<string>({ kind: 'expression', type: 'JSONata expression', meta }, (node, at, ctx) => {
    const t = scalarText(node, at, ctx, 'expression', meta, 'an expression');
    if (t === INVALID) return INVALID;
    if (t.text.trim() === '') return fail(ctx, node, at, 'the expression is empty', withExample('write a JSONata expression', meta));
    const issue = ctx.expressions?.check(t.text);
    if (issue) {
      const pos = issue.offset !== undefined ? t.pos(Math.min(issue.offset, Math.max(0, t.text.length - 1))) : node.pos;
      const near = issue.token && issue.token !== '(end)' ? ` near "${issue.token}"` : issue.token === '(end)' ? ' at its end' : '';
      const bloblang = looksLikeBloblang(t.text) ? ` (${BLOBLANG_FIX})` : '';
      ctx.report(pos, at.path, `invalid ${ctx.expressions!.name}: ${issue.message}`, `correct the expression${near}; syntax: https://docs.jsonata.org${bloblang}`);
      return INVALID;
    }
    const calls = ctx.expressions?.checkCalls?.(t.text) ?? [];
    for (const call of calls) {
      ctx.report(t.pos(Math.min(call.offset ?? 0, Math.max(0, t.text.length - 1))), at.path, `${ctx.expressions!.name}: ${call.message}`, call.fix ?? 'correct the call');
    }
    if (calls.length > 0) return INVALID;
    return t.text;
  }) as Field<Opt<M, string>>;
}

export interface TemplateMeta extends FieldMeta {
  /** Apply the S3 object key rules (deterministic from topic, partition and first offset). */
  objectKey?: boolean;
}

/** A path template (see path-template.ts), validated at load; the loaded value is the parsed template. */
export function template<const M extends TemplateMeta>(meta: M): Field<Opt<M, PathTemplate>> {
  return build<PathTemplate>({ kind: 'template', type: 'path template', meta }, (node, at, ctx) => {
    const t = scalarText(node, at, ctx, 'template', meta, 'a path template');
    if (t === INVALID) return INVALID;
    const { template: parsed, errors } = parsePathTemplate(t.text);
    if (meta.objectKey) errors.push(...objectKeyProblems(parsed));
    for (const e of errors) ctx.report(t.pos(e.offset), at.path, e.message, e.fix);
    ctx.locators.set(pathText(at.path), t.pos);
    return errors.length > 0 ? INVALID : parsed;
  }) as Field<Opt<M, PathTemplate>>;
}

// ---------------------------------------------------------------------------------------
// Structures

export interface ListMeta extends FieldMeta {
  minItems?: number;
  /** Items must differ (compared as loaded; objects by their `name`). */
  unique?: boolean;
  /** A text value (or a text item) may hold several comma-separated items, as env vars do. */
  commaSeparated?: boolean;
}

export function list<T, const M extends ListMeta>(item: Field<T>, meta: M): Field<Opt<M, T[]>> {
  return build<T[]>({ kind: 'list', type: `list of ${item.type}`, meta, item }, (node, at, ctx) => {
    const problemsBefore = ctx.problems.length;
    let items: { node: ConfigNode; at: At }[];
    if (node.kind === 'seq') {
      items = node.items.map((n, i) => ({ node: n, at: { path: [...at.path, `[${i}]`], pos: n.pos } }));
    } else if (node.kind === 'scalar' && meta.commaSeparated && node.value !== null) {
      items = [{ node, at }];
    } else {
      return fail(ctx, node, at, `expected a list, got ${describeNode(node, meta.secret)}`, withExample('write a YAML list', meta));
    }
    if (meta.commaSeparated) items = items.flatMap((it) => splitCommas(it.node, it.at, ctx, meta));
    const out: T[] = [];
    let ok = true;
    const seen = new Map<string, number>();
    items.forEach(({ node: itemNode, at: itemAt }, i) => {
      const path = node.kind === 'seq' ? itemAt.path : [...at.path, `[${i}]`];
      if (itemNode.kind === 'scalar' && itemNode.value === null) {
        ok = false;
        fail(ctx, itemNode, { path, pos: itemNode.pos }, 'empty list item', 'remove it or write a value');
        return;
      }
      ctx.positions.set(pathText(path), itemNode.pos);
      const value = item.parseNode(itemNode, { path, pos: itemNode.pos }, ctx);
      if (value === INVALID) {
        ok = false;
        return;
      }
      if (meta.unique) {
        const named = value !== null && typeof value === 'object' && 'name' in value;
        const key = named ? String((value as { name: unknown }).name) : JSON.stringify(value);
        const first = seen.get(key);
        if (first !== undefined) {
          ok = false;
          const same = named ? ` (same name "${key}")` : '';
          fail(ctx, itemNode, { path, pos: itemNode.pos }, `duplicate of ${pathText([...at.path, `[${first}]`])}${same}`, 'remove the duplicate');
          return;
        }
        seen.set(key, i);
      }
      out.push(value);
    });
    if (ctx.problems.length > problemsBefore) ok = false;
    if (ok && meta.minItems !== undefined && out.length < meta.minItems) {
      return fail(ctx, node, at, `needs at least ${meta.minItems} item${meta.minItems === 1 ? '' : 's'}`, withExample('add items', meta));
    }
    return ok ? out : INVALID;
  }) as Field<Opt<M, T[]>>;
}

/** `a,b` in a text node -> one node per part (after interpolation, so `${BROKERS}` may hold several). */
function splitCommas(node: ConfigNode, at: At, ctx: ParseContext, meta: FieldMeta): { node: ConfigNode; at: At }[] {
  if (node.kind !== 'scalar' || typeof node.value !== 'string') return [{ node, at }];
  const t = scalarText(node, at, ctx, 'plain', meta, 'text');
  if (t === INVALID) return [];
  // The parts are interpolated already: they must not be again.
  const origin: Origin = node.origin.from === 'file' ? { from: 'file', interpolated: true } : node.origin;
  const parts: { node: ConfigNode; at: At }[] = [];
  let offset = 0;
  for (const piece of t.text.split(',')) {
    const trimmed = piece.trim();
    const start = offset + piece.indexOf(trimmed);
    offset += piece.length + 1;
    if (trimmed === '') continue;
    const pos = t.pos(start);
    parts.push({ node: { kind: 'scalar', pos, origin, value: trimmed, at: () => pos }, at: { path: at.path, pos } });
  }
  return parts;
}

export type Shape = Record<string, AnyField>;
export type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

export function object<S extends Shape, const M extends FieldMeta>(fields: S, meta: M): Field<Opt<M, ObjectOf<S>>> {
  return build<ObjectOf<S>>({ kind: 'object', type: 'object', meta, fields }, (node, at, ctx) => {
    if (node.kind !== 'map') return fail(ctx, node, at, `expected an object (key: value lines), got ${describeNode(node)}`, withExample('write the fields indented under the key', meta));
    const names = Object.keys(fields);
    let ok = true;
    for (const entry of node.entries) {
      if (!(entry.key in fields)) {
        ok = false;
        ctx.report(entry.keyPos, [...at.path, entry.key], `unknown field "${entry.key}"`, redpandaFieldHint(pathText(at.path), entry.key) ?? suggestion(entry.key, names, `${pathText(at.path) || 'the file'} takes`));
      }
    }
    const out: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(fields)) {
      const entry = node.entries.find((e) => e.key === name);
      const value = resolveField(field, entry?.value, { path: [...at.path, name], pos: entry ? entry.keyPos : at.pos }, ctx);
      if (value === INVALID) ok = false;
      else out[name] = value;
    }
    return ok ? (out as ObjectOf<S>) : INVALID;
  }) as Field<Opt<M, ObjectOf<S>>>;
}

export interface MapMeta extends FieldMeta {
  keyPattern?: RegExp;
  keyFix?: string;
}

/** Free-form keys (e.g. header names) with values of one type. */
export function map<T, const M extends MapMeta>(value: Field<T>, meta: M): Field<Opt<M, Record<string, T>>> {
  return build<Record<string, T>>({ kind: 'map', type: `map of ${value.type}`, meta, item: value }, (node, at, ctx) => {
    if (node.kind !== 'map') return fail(ctx, node, at, `expected an object (name: value lines), got ${describeNode(node)}`, withExample('write name: value lines', meta));
    const out: Record<string, T> = {};
    let ok = true;
    for (const entry of node.entries) {
      const path = [...at.path, entry.key];
      if (meta.keyPattern && !meta.keyPattern.test(entry.key)) {
        ok = false;
        ctx.report(entry.keyPos, path, `"${entry.key}" is not allowed as a name here`, meta.keyFix ?? `match ${meta.keyPattern.source}`);
        continue;
      }
      const v = resolveField(value, entry.value, { path, pos: entry.keyPos }, ctx);
      if (v === INVALID) ok = false;
      else out[entry.key] = v;
    }
    return ok ? out : INVALID;
  }) as Field<Opt<M, Record<string, T>>>;
}
