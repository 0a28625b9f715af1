import avro from 'avsc';
import type { CompatibilityLevel } from '../registry/ccompat.js';

/**
 * The offline schema-evolution rules: which earlier schemas a changed one is compared with
 * under a compatibility level, whether a reader schema can read what a writer schema wrote
 * (avsc's resolution is the verdict), and, when it cannot, which field is to blame (a small
 * structural diff, because avsc's own errors and the registry's verdict rarely name it).
 * Pure: no files, no git, no network.
 */

export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const satisfies readonly CompatibilityLevel[];

export interface LevelRule {
  /** New schema must read data written with the old one (consumers upgrade first). */
  backward: boolean;
  /** Old schema must read data written with the new one (producers upgrade first). */
  forward: boolean;
  /** Against every earlier schema (true) or the latest earlier one only (false). */
  transitive: boolean;
}

/** What a level demands; undefined for NONE (nothing is checked). */
export function levelRule(level: CompatibilityLevel): LevelRule | undefined {
  switch (level) {
    case 'NONE':
      return undefined;
    case 'BACKWARD':
    case 'BACKWARD_TRANSITIVE':
      return { backward: true, forward: false, transitive: level.endsWith('_TRANSITIVE') };
    case 'FORWARD':
    case 'FORWARD_TRANSITIVE':
      return { backward: false, forward: true, transitive: level.endsWith('_TRANSITIVE') };
    case 'FULL':
    case 'FULL_TRANSITIVE':
      return { backward: true, forward: true, transitive: level.endsWith('_TRANSITIVE') };
  }
}

/** One schema the gate compares: a vN.avsc file as it is now, or one committed content of it. */
export interface SchemaSnapshot {
  /** N of vN.avsc. */
  version: number;
  /** Display path of the file, e.g. `schemas/agent-event/v2.avsc`. */
  file: string;
  /** Set when this is a committed content from git history rather than the file as it is now. */
  commit?: { hash: string; date: string } | undefined;
  type: avro.Type;
}

/** `v2`, or `v1 as committed in 3f2a9c1 (2026-11-02)` for a content from history. */
export function snapshotLabel(s: SchemaSnapshot): string {
  return s.commit ? `v${s.version} as committed in ${s.commit.hash.slice(0, 7)} (${s.commit.date.slice(0, 10)})` : `v${s.version}`;
}

/**
 * Whether `reader` can read data written with `writer`, by the Avro specification's
 * resolution rules as avsc implements them. Named types match on the unqualified name or an
 * alias, as the specification (and the Java implementation registries use) says.
 */
export function resolutionError(reader: avro.Type, writer: avro.Type): string | undefined {
  try {
    // A fresh options object each time: avsc caches resolvers in it.
    reader.createResolver(writer, { ignoreNamespaces: true });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

export interface PairContext {
  /** Label of the newer schema (the change under check), e.g. `v2`. */
  newLabel: string;
  /** Label of the older schema it is compared with. */
  oldLabel: string;
  /** True when the reader is the newer schema (BACKWARD), false when it is the older (FORWARD). */
  readerIsNew: boolean;
}

/**
 * The field-level reasons `reader` cannot read `writer`, each a sentence naming the field
 * path (`AgentEvent.data.DepositMade.amount_minor`). Empty when the types resolve, or when
 * the diff cannot pin the cause down (the caller then falls back to avsc's message).
 */
export function explainIncompatibility(reader: avro.Type, writer: avro.Type, ctx: PairContext): string[] {
  const root = reader.name ? shortName(reader.name) : displayType(reader);
  return [...new Set(explain(reader, writer, root, { ...ctx, visiting: new Map() }, true))];
}

interface WalkContext extends PairContext {
  /** Pairs being explained up the stack: a recursive schema is walked once. */
  visiting: Map<avro.Type, Set<avro.Type>>;
}

function explain(reader: avro.Type, writer: avro.Type, path: string, ctx: WalkContext, isRoot = false): string[] {
  const seen = ctx.visiting.get(reader) ?? new Set<avro.Type>();
  if (seen.has(writer)) return [];
  if (resolutionError(reader, writer) === undefined) return [];
  seen.add(writer);
  ctx.visiting.set(reader, seen);
  try {
    return explainNode(reader, writer, path, ctx, isRoot);
  } finally {
    seen.delete(writer);
  }
}

function explainNode(reader: avro.Type, writer: avro.Type, path: string, ctx: WalkContext, isRoot: boolean): string[] {
  const oldType = ctx.readerIsNew ? writer : reader;
  const newType = ctx.readerIsNew ? reader : writer;
  const what = isRoot ? `the schema's type (${path})` : `field ${path}`;
  const changed = () => [`${what} changed type ${displayType(oldType)} -> ${displayType(newType)}`];

  const rKind = kind(reader);
  const wKind = kind(writer);

  if (wKind === 'union') {
    const readerBranches = rKind === 'union' ? branches(reader) : [reader];
    const out: string[] = [];
    for (const wb of branches(writer)) {
      if (readerBranches.some((rb) => resolutionError(rb, wb) === undefined)) continue;
      const counterpart = readerBranches.find((rb) => sameKind(rb, wb));
      if (counterpart) {
        out.push(...explain(counterpart, wb, branchPath(path, wb), ctx));
      } else if (rKind === 'union') {
        out.push(
          ctx.readerIsNew
            ? `union branch ${displayType(wb)} of ${what} was removed`
            : `${what} gained union branch ${displayType(wb)}, which ${ctx.oldLabel} cannot read`,
        );
      } else {
        out.push(`${what} changed type ${displayType(oldType)} -> ${displayType(newType)} (${ctx.readerIsNew ? 'its' : 'the new'} ${displayType(wb)} branch cannot be read)`);
      }
    }
    return out;
  }

  if (rKind === 'union') {
    const counterpart = branches(reader).find((rb) => sameKind(rb, writer));
    return counterpart ? explain(counterpart, writer, branchPath(path, writer), ctx) : changed();
  }

  if (rKind !== wKind) return changed();

  if (isNamed(reader) && !namesMatch(reader, writer)) {
    const from = shortName(oldType.name!);
    const to = shortName(newType.name!);
    return [
      `${rKind} ${from}${isRoot ? '' : ` of ${what}`} was renamed to ${to}` +
        (ctx.readerIsNew ? ` without an alias for ${from}` : ` (${ctx.oldLabel} has no alias for ${to})`),
    ];
  }

  switch (rKind) {
    case 'record': {
      const out: string[] = [];
      const writerFields = (writer as avro.types.RecordType).fields;
      for (const rf of (reader as avro.types.RecordType).fields) {
        const names = [rf.name, ...(rf.aliases ?? [])];
        const wf = writerFields.find((f) => names.includes(f.name));
        const fieldPath = `${path}.${rf.name}`;
        if (!wf) {
          if (rf.defaultValue() === undefined) {
            out.push(
              ctx.readerIsNew
                ? `field ${fieldPath} was added without a default`
                : `field ${fieldPath} was removed, and ${ctx.oldLabel} declares it without a default`,
            );
          }
          continue;
        }
        out.push(...explain(rf.type, wf.type, fieldPath, ctx));
      }
      return out;
    }
    case 'enum': {
      const readerSymbols = (reader as avro.types.EnumType).symbols;
      if ((reader as { default?: string }).default !== undefined) return [];
      const where = isRoot ? `enum ${path}` : `enum ${shortName(reader.name!)} of ${what}`;
      return (writer as avro.types.EnumType).symbols
        .filter((s) => !readerSymbols.includes(s))
        .map((s) =>
          ctx.readerIsNew
            ? `symbol ${s} was removed from ${where}, which has no enum default`
            : `symbol ${s} was added to ${where}, and ${ctx.oldLabel} has no enum default`,
        );
    }
    case 'fixed':
      return [
        `fixed ${shortName(reader.name!)}${isRoot ? '' : ` of ${what}`} changed size ${(oldType as avro.types.FixedType).size} -> ${(newType as avro.types.FixedType).size}`,
      ];
    case 'array':
      return explain((reader as avro.types.ArrayType).itemsType, (writer as avro.types.ArrayType).itemsType, `${path}[]`, ctx);
    case 'map':
      return explain((reader as avro.types.MapType).valuesType as avro.Type, (writer as avro.types.MapType).valuesType as avro.Type, `${path}{}`, ctx);
    default:
      return changed();
  }
}

/** The kind of a type for matching: primitives by name; record and error are one kind. */
function kind(t: avro.Type): string {
  const name = t.typeName;
  if (name.startsWith('union')) return 'union';
  if (name === 'error') return 'record';
  if (name.startsWith('logical')) return kind((t as avro.types.LogicalType).underlyingType);
  return name;
}

function isNamed(t: avro.Type): boolean {
  return ['record', 'enum', 'fixed'].includes(kind(t));
}

/** The union branch of the other side that plays the same role: same named type, or same kind. */
function sameKind(a: avro.Type, b: avro.Type): boolean {
  if (kind(a) !== kind(b)) return false;
  return isNamed(a) ? namesMatch(a, b) : true;
}

function namesMatch(reader: avro.Type, writer: avro.Type): boolean {
  const wanted = shortName(writer.name ?? '');
  return [reader.name ?? '', ...(reader.aliases ?? [])].some((n) => shortName(n) === wanted);
}

function branches(t: avro.Type): avro.Type[] {
  return (t as avro.types.UnwrappedUnionType).types;
}

function branchPath(path: string, branch: avro.Type): string {
  return isNamed(branch) ? `${path}.${shortName(branch.name!)}` : path;
}

function shortName(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** A compact type name for messages: `long`, `DepositMade`, `array<long>`, `[null, string]`. */
export function displayType(t: avro.Type): string {
  switch (kind(t)) {
    case 'union':
      return `[${branches(t).map(displayType).join(', ')}]`;
    case 'array':
      return `array<${displayType((t as avro.types.ArrayType).itemsType)}>`;
    case 'map':
      return `map<${displayType((t as avro.types.MapType).valuesType as avro.Type)}>`;
    case 'record':
    case 'enum':
    case 'fixed':
      return shortName(t.name ?? kind(t));
    default:
      return kind(t);
  }
}

/** One comparison of the change under check with one earlier schema, in one direction. */
export interface CompatibilityProblem {
  /** File of the changed schema, which is what has to be fixed. */
  file: string;
  level: CompatibilityLevel;
  reader: string;
  writer: string;
  /** Field-level reasons; avsc's own message when the diff found none. */
  reasons: string[];
  /** One line per reason: `FILE: REASON: consumers using R cannot read events written with W (LEVEL)`. */
  messages: string[];
}

/**
 * Checks `current` against the earlier schemas `previous` (oldest first) under `level`:
 * transitive levels compare with all of them, the others with the last one only.
 */
export function checkAgainst(current: SchemaSnapshot, previous: readonly SchemaSnapshot[], level: CompatibilityLevel): { compared: SchemaSnapshot[]; problems: CompatibilityProblem[] } {
  const rule = levelRule(level);
  if (!rule || previous.length === 0) return { compared: [], problems: [] };
  const compared = rule.transitive ? [...previous] : previous.slice(-1);
  const problems: CompatibilityProblem[] = [];
  for (const old of compared) {
    const pairs: Array<{ reader: SchemaSnapshot; writer: SchemaSnapshot; readerIsNew: boolean }> = [];
    if (rule.backward) pairs.push({ reader: current, writer: old, readerIsNew: true });
    if (rule.forward) pairs.push({ reader: old, writer: current, readerIsNew: false });
    for (const { reader, writer, readerIsNew } of pairs) {
      const avscError = resolutionError(reader.type, writer.type);
      if (avscError === undefined) continue;
      const ctx: PairContext = { newLabel: snapshotLabel(current), oldLabel: snapshotLabel(old), readerIsNew };
      const explained = explainIncompatibility(reader.type, writer.type, ctx);
      const reasons = explained.length > 0 ? explained : [`avsc cannot resolve the schemas: ${avscError}`];
      const readerLabel = snapshotLabel(reader);
      const writerLabel = snapshotLabel(writer);
      problems.push({
        file: current.file,
        level,
        reader: readerLabel,
        writer: writerLabel,
        reasons,
        messages: reasons.map((r) => `${current.file}: ${r}: consumers using ${readerLabel} cannot read events written with ${writerLabel} (${level})`),
      });
    }
  }
  return { compared, problems };
}
