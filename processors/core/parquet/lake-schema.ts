import { stringify as losslessStringify } from 'lossless-json';
import { PermanentError } from '../errors/errors.js';

/**
 * The lake's table shape (flat, typed, nullable columns) and its derivation from an Avro
 * record schema, with the matching value mapper. Pure: no I/O, no Parquet library.
 *
 * Mapping (Avro -> lake column):
 * Column type names are those of the s3 output's `columns` (processors/core/pipeline), plus
 * a few that only a derived schema produces (local_timestamp_*, time_*).
 * - int -> int32, long -> int64 (numbers or bigints; exact to 2^63), float -> float,
 *   double -> double, boolean -> boolean, string / enum / uuid -> string, bytes / fixed -> bytes.
 * - timestamp-micros / timestamp-millis -> timestamp_us / timestamp_ms, UTC-adjusted
 *   (Parquet TIMESTAMP isAdjustedToUTC=true); local-timestamp-* -> local_timestamp_* (not
 *   adjusted); date -> date; time-millis / time-micros -> time_ms / time_us.
 * - decimal -> string holding the exact decimal text (`-123.45`): exact, and readers cast it.
 * - ["null", T] -> T, nullable.
 * - a nested record -> its fields flattened into `parent_child` columns (analytics engines
 *   filter and prune flat columns best, and every reader supports them; a struct column would
 *   tie queries to each engine's struct syntax). Children of a nullable record are nullable.
 * - a union of records (with or without null), like AgentEvent.data -> the union of the
 *   branches' fields as nullable `parent_field` columns (a field present in several branches
 *   is one column, so `data_amount_minor` serves deposits, withdrawals and investments), plus
 *   `parent_branch`: the name of the branch the value took (`DepositMade`; full names when
 *   two branches share a short name), required unless the union has null. Branches must
 *   agree on a shared field's column type. Decoded values must come wrapped as avsc does
 *   (`{ "io.sluice.events.DepositMade": {...} }`); a bare record is refused (which branch?).
 * - map, array, a recursive record, and any other union (several non-record branches, or
 *   records mixed with primitives) -> string holding the value as JSON text (bigints exact,
 *   bytes as base64).
 */

export const LAKE_TYPES = [
  'string',
  'bytes',
  'boolean',
  'int32',
  'int64',
  'float',
  'double',
  'timestamp_ms',
  'timestamp_us',
  'date',
  'local_timestamp_ms',
  'local_timestamp_us',
  'time_ms',
  'time_us',
] as const;
export type LakeType = (typeof LAKE_TYPES)[number];

export interface LakeColumn {
  name: string;
  type: LakeType;
  nullable: boolean;
  /** Where the column comes from and what it holds; carried from the Avro `doc`. */
  doc?: string | undefined;
}

export interface LakeSchema {
  readonly columns: readonly LakeColumn[];
}

/** A flat row keyed by column name; a missing key is null. */
export type LakeValue = string | number | bigint | boolean | Uint8Array | Date | null | undefined;
export type LakeRow = Record<string, LakeValue>;

/** The Avro schema cannot be turned into a lake table (unsupported type, clashing names). */
export class LakeSchemaError extends PermanentError {}

/** The Kafka coordinates every lake row carries (set by the export runner, not the record). */
export const KAFKA_METADATA_COLUMNS: readonly LakeColumn[] = [
  { name: 'kafka_topic', type: 'string', nullable: false, doc: 'topic the record was read from' },
  { name: 'kafka_partition', type: 'int32', nullable: false, doc: 'partition the record was read from' },
  { name: 'kafka_offset', type: 'int64', nullable: false, doc: 'offset of the record in its partition' },
];

export interface AvroLakeOptions {
  /** Columns appended after the derived ones, e.g. KAFKA_METADATA_COLUMNS; the mapper leaves them to the caller. */
  extraColumns?: readonly LakeColumn[] | undefined;
  /** Joins parent and child names; default `_`. */
  separator?: string | undefined;
  /** Suffix of the column naming a union's branch; default `branch` (`data_branch`). */
  branchSuffix?: string | undefined;
}

/** A derived lake schema with the function that flattens a decoded Avro value into a row of it. */
export interface AvroLakeMapping {
  schema: LakeSchema;
  /**
   * Flattens one value decoded with the schema (avsc conventions: a union of records is
   * wrapped as `{ 'io.sluice.events.DepositMade': {...} }`, the short name is accepted too;
   * a `["null", T]` union is the bare value or null). `extra` is merged in (Kafka columns).
   */
  toRow(value: unknown, extra?: LakeRow): LakeRow;
}

/** The lake schema of an Avro record schema (JSON object or text). See the module doc for the mapping. */
export function lakeSchemaFromAvro(avroSchema: unknown, options: AvroLakeOptions = {}): LakeSchema {
  return avroLakeMapping(avroSchema, options).schema;
}

/** Derives the lake schema and compiles the flattener of values, in one walk of the Avro schema. */
export function avroLakeMapping(avroSchema: unknown, options: AvroLakeOptions = {}): AvroLakeMapping {
  const root = typeof avroSchema === 'string' ? (JSON.parse(avroSchema) as unknown) : avroSchema;
  const deriver = new Deriver(options.separator ?? '_', options.branchSuffix ?? 'branch');
  const resolved = deriver.resolve(root, undefined);
  if (resolved.kind !== 'record') throw new LakeSchemaError(`the top-level Avro schema must be a record, got ${describe(root)}`);
  const fill = deriver.record(resolved, [], false);
  const columns = [...deriver.columns];
  const names = new Set(columns.map((c) => c.name));
  for (const extra of options.extraColumns ?? []) {
    if (names.has(extra.name)) throw new LakeSchemaError(`extra column ${extra.name} clashes with a column derived from the Avro schema`);
    names.add(extra.name);
    columns.push({ ...extra });
  }
  return {
    schema: { columns },
    toRow(value, extra) {
      const row: LakeRow = {};
      fill(value, row);
      return extra ? Object.assign(row, extra) : row;
    },
  };
}

// ---------------------------------------------------------------------------------------
// The walk. Each Avro type becomes a "filler": (value, row) => void, writing its columns.

type Filler = (value: unknown, row: LakeRow) => void;

interface AvroRecord {
  kind: 'record';
  fullName: string;
  shortName: string;
  fields: { name: string; type: unknown; doc?: string }[];
  namespace: string | undefined;
}
type Resolved =
  | AvroRecord
  | { kind: 'primitive'; type: LakeType; convert?: (v: unknown) => LakeValue }
  | { kind: 'union'; branches: unknown[]; namespace: string | undefined }
  | { kind: 'json' };

const PRIMITIVES: Record<string, LakeType> = {
  int: 'int32',
  long: 'int64',
  float: 'float',
  double: 'double',
  boolean: 'boolean',
  string: 'string',
  bytes: 'bytes',
};
const LOGICAL: Record<string, { base: string[]; type: LakeType }> = {
  'timestamp-micros': { base: ['long'], type: 'timestamp_us' },
  'timestamp-millis': { base: ['long'], type: 'timestamp_ms' },
  'local-timestamp-micros': { base: ['long'], type: 'local_timestamp_us' },
  'local-timestamp-millis': { base: ['long'], type: 'local_timestamp_ms' },
  date: { base: ['int'], type: 'date' },
  'time-millis': { base: ['int'], type: 'time_ms' },
  'time-micros': { base: ['long'], type: 'time_us' },
  uuid: { base: ['string', 'fixed'], type: 'string' },
};

class Deriver {
  readonly columns: LakeColumn[] = [];
  private readonly origins = new Map<string, { column: LakeColumn; origin: string }>();
  private readonly named = new Map<string, Record<string, unknown>>();
  /** Records being flattened (recursion guard: a record inside itself becomes JSON). */
  private readonly open = new Set<string>();

  constructor(
    private readonly sep: string,
    private readonly branchSuffix: string,
  ) {}

  /** What an Avro type is, after named references and logical types. */
  resolve(schema: unknown, namespace: string | undefined): Resolved {
    if (typeof schema === 'string') {
      if (schema === 'null') throw new LakeSchemaError('a bare "null" type has no column; use it in a union');
      const primitive = PRIMITIVES[schema];
      if (primitive) return { kind: 'primitive', type: primitive };
      // A bare name means the enclosing namespace's type first (Avro's rule), then the bare name.
      const named = (namespace && !schema.includes('.') ? this.named.get(`${namespace}.${schema}`) : undefined) ?? this.named.get(schema);
      if (!named) throw new LakeSchemaError(`unknown Avro type name ${schema}`);
      return this.resolve(named, namespaceOf(named, namespace));
    }
    if (Array.isArray(schema)) return { kind: 'union', branches: schema, namespace };
    if (!schema || typeof schema !== 'object') throw new LakeSchemaError(`not an Avro schema: ${describe(schema)}`);
    const s = schema as Record<string, unknown>;
    const type = s.type;
    if (type === 'record' || type === 'error' || type === 'enum' || type === 'fixed') this.define(s, namespace);
    const logical = typeof s.logicalType === 'string' ? s.logicalType : undefined;
    if (logical === 'decimal' && (type === 'bytes' || type === 'fixed')) {
      const scale = typeof s.scale === 'number' ? s.scale : 0;
      return { kind: 'primitive', type: 'string', convert: (v) => decimalText(v, scale) };
    }
    if (logical && LOGICAL[logical] && LOGICAL[logical].base.includes(String(type))) {
      if (logical === 'uuid' && type === 'fixed') return { kind: 'primitive', type: 'string', convert: uuidText };
      return { kind: 'primitive', type: LOGICAL[logical].type };
    }
    // Unknown logical types fall back to their underlying type, as the Avro spec says.
    switch (type) {
      case 'record':
      case 'error': {
        const ns = namespaceOf(s, namespace);
        const name = String(s.name);
        if (!Array.isArray(s.fields)) throw new LakeSchemaError(`record ${name} has no fields array`);
        return { kind: 'record', fullName: fullNameOf(name, ns), shortName: name.split('.').pop()!, fields: s.fields as AvroRecord['fields'], namespace: ns };
      }
      case 'enum':
        return { kind: 'primitive', type: 'string' };
      case 'fixed':
        return { kind: 'primitive', type: 'bytes' };
      case 'map':
      case 'array':
        return { kind: 'json' };
      default:
        if (typeof type === 'string' || typeof type === 'object') return this.resolve(type, namespace);
        throw new LakeSchemaError(`unsupported Avro type ${describe(schema)}`);
    }
  }

  private define(s: Record<string, unknown>, namespace: string | undefined): void {
    const ns = namespaceOf(s, namespace);
    const full = fullNameOf(String(s.name), ns);
    this.named.set(full, s);
    if (!this.named.has(String(s.name))) this.named.set(String(s.name), s);
  }

  /** Flattens a record's fields under `prefix` (empty at the top level). */
  record(rec: AvroRecord, prefix: string[], nullable: boolean): Filler {
    this.open.add(rec.fullName);
    const fillers: [string, Filler][] = rec.fields.map((f) => [f.name, this.field(f.type, [...prefix, f.name], nullable, f.doc ?? '', rec.namespace)]);
    this.open.delete(rec.fullName);
    return (value, row) => {
      if (value === null || value === undefined) return; // every column stays null
      const v = value as Record<string, unknown>;
      for (const [name, fill] of fillers) fill(v[name], row);
    };
  }

  private field(type: unknown, path: string[], nullable: boolean, doc: string, namespace: string | undefined): Filler {
    const resolved = this.resolve(type, namespace);
    switch (resolved.kind) {
      case 'primitive':
        return this.leaf(path, resolved.type, nullable, doc, resolved.convert);
      case 'json':
        return this.jsonLeaf(path, nullable, doc);
      case 'record':
        if (this.open.has(resolved.fullName)) return this.jsonLeaf(path, nullable, doc);
        return this.record(resolved, path, nullable);
      case 'union':
        return this.union(resolved.branches, path, nullable, doc, resolved.namespace);
    }
  }

  private union(branches: unknown[], path: string[], nullable: boolean, doc: string, namespace: string | undefined): Filler {
    const nonNull = branches.filter((b) => b !== 'null');
    const withNull = nonNull.length < branches.length || nullable;
    if (nonNull.length === 0) throw new LakeSchemaError(`union at ${path.join('.')} has no non-null branch`);
    if (nonNull.length === 1) {
      const only = this.resolve(nonNull[0], namespace);
      if (only.kind !== 'record' || this.open.has(only.fullName)) return this.field(nonNull[0], path, withNull, doc, namespace);
      const fill = this.record(only, path, withNull);
      // avsc unwraps ["null", Record]; accept the wrapped form too ({ fullName: value }).
      return (value, row) => fill(unwrap(value, [only.fullName]) ?? value, row);
    }
    const resolved = nonNull.map((b) => this.resolve(b, namespace));
    if (!resolved.every((r): r is AvroRecord => r.kind === 'record') || resolved.some((r) => this.open.has(r.fullName))) {
      return this.jsonLeaf(path, withNull, doc);
    }
    return this.recordUnion(resolved, path, withNull);
  }

  /** A union of records: shared nullable columns per field name, and a branch column (required unless the union has null). */
  private recordUnion(records: AvroRecord[], path: string[], nullable: boolean): Filler {
    const branchColumn = [...path, this.branchSuffix].join(this.sep);
    const shortUnique = new Set(records.map((r) => r.shortName)).size === records.length;
    this.addColumn(
      { name: branchColumn, type: 'string', nullable, doc: `branch of ${path.join('.')}: ${records.map((r) => (shortUnique ? r.shortName : r.fullName)).join(', ')}` },
      `${path.join('.')}#branch`,
    );
    const byKey = new Map<string, { label: string; fill: Filler }>();
    for (const rec of records) {
      // Derive each branch's columns; a column another branch already made is reused when the types agree.
      const label = shortUnique ? rec.shortName : rec.fullName;
      const fill = this.record(rec, path, true);
      byKey.set(rec.fullName, { label, fill });
      if (shortUnique) byKey.set(rec.shortName, { label, fill });
    }
    return (value, row) => {
      if (value === null || value === undefined) return;
      const keys = Object.keys(value as object);
      const branch = keys.length === 1 ? byKey.get(keys[0]!) : undefined;
      if (!branch) throw new LakeValueShapeError(`${path.join('.')}: a union of records must be wrapped as { "<record name>": value }, got keys [${keys.slice(0, 5).join(', ')}]`);
      row[branchColumn] = branch.label;
      branch.fill((value as Record<string, unknown>)[keys[0]!], row);
    };
  }

  private leaf(path: string[], type: LakeType, nullable: boolean, doc: string, convert?: (v: unknown) => LakeValue): Filler {
    const name = path.join(this.sep);
    this.addColumn({ name, type, nullable, doc }, path.join('.'));
    if (convert) return (value, row) => void (row[name] = value === null || value === undefined ? null : convert(value));
    return (value, row) => void (row[name] = value as LakeValue);
  }

  private jsonLeaf(path: string[], nullable: boolean, doc: string): Filler {
    const name = path.join(this.sep);
    this.addColumn({ name, type: 'string', nullable, doc: doc ? `${doc} (JSON text)` : 'JSON text' }, path.join('.'));
    return (value, row) => void (row[name] = value === null || value === undefined ? null : jsonText(value));
  }

  /**
   * Adds a column. `origin` is its Avro path (dots can't occur in Avro names): the same field
   * of several union branches shares one column; two different fields flattening to the same
   * name (`a_b` beside `a.b`) are an error.
   */
  private addColumn(column: LakeColumn, origin: string): void {
    const existing = this.origins.get(column.name);
    if (!existing) {
      this.origins.set(column.name, { column, origin });
      this.columns.push(column);
      return;
    }
    if (existing.origin !== origin) {
      throw new LakeSchemaError(`column ${column.name} would hold both ${existing.origin} and ${origin}: rename one of the fields`);
    }
    if (existing.column.type !== column.type) {
      throw new LakeSchemaError(`column ${column.name}: union branches disagree on the type of ${origin} (${existing.column.type} vs ${column.type})`);
    }
    existing.column.nullable ||= column.nullable;
    if (!existing.column.doc && column.doc) existing.column.doc = column.doc;
  }
}

/** A decoded value does not have the shape its Avro schema promises. */
export class LakeValueShapeError extends PermanentError {}

function unwrap(value: unknown, names: string[]): unknown {
  if (!value || typeof value !== 'object') return undefined;
  const keys = Object.keys(value);
  return keys.length === 1 && names.includes(keys[0]!) ? (value as Record<string, unknown>)[keys[0]!] : undefined;
}

function namespaceOf(s: Record<string, unknown>, inherited: string | undefined): string | undefined {
  const name = String(s.name ?? '');
  if (name.includes('.')) return name.slice(0, name.lastIndexOf('.'));
  return typeof s.namespace === 'string' && s.namespace !== '' ? s.namespace : inherited;
}

function fullNameOf(name: string, namespace: string | undefined): string {
  return name.includes('.') || !namespace ? name : `${namespace}.${name}`;
}

function describe(schema: unknown): string {
  const text = JSON.stringify(schema) ?? String(schema);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** JSON text of a map/array/union value: bigints as exact numbers, bytes as base64, Dates as ISO text. */
export function jsonText(value: unknown): string {
  // lossless-json hands the replacer each raw value (before toJSON) and writes bigints as plain numbers.
  const text = losslessStringify(value, (_key: string, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : v,
  );
  return text ?? 'null';
}

/** Exact decimal text of an Avro decimal (two's-complement big-endian unscaled bytes). */
function decimalText(value: unknown, scale: number): string {
  if (!(value instanceof Uint8Array)) throw new LakeValueShapeError(`decimal value must be bytes, got ${typeof value}`);
  let unscaled = 0n;
  for (const byte of value) unscaled = (unscaled << 8n) | BigInt(byte);
  if (value.length > 0 && value[0]! & 0x80) unscaled -= 1n << BigInt(8 * value.length);
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}

function uuidText(value: unknown): string {
  if (!(value instanceof Uint8Array) || value.length !== 16) throw new LakeValueShapeError('uuid on fixed must be 16 bytes');
  const hex = Buffer.from(value).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
