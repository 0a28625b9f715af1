import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, type Document, type Node as YamlNode } from 'yaml';

/**
 * A pipeline file as a tree of nodes that remember where they came from: the file (line
 * and column, 1-based), an environment variable or a spec default. Lint works on this
 * tree, so every problem can name its line even after `${ENV}` interpolation, which
 * happens later, value by value (see interpolation.ts).
 */
export interface Pos {
  line: number;
  column: number;
}

/** Where a value came from; `interpolated` marks file text already run through `${ENV}` interpolation; `flag`: a `--set` argument. */
export type Origin = { from: 'file'; interpolated?: true } | { from: 'env'; name: string } | { from: 'default' } | { from: 'flag'; text: string };

interface NodeBase {
  pos: Pos;
  origin: Origin;
}

export interface MapEntry {
  key: string;
  keyPos: Pos;
  /** Undefined for `key:` with nothing after it. */
  value: ConfigNode | undefined;
}

export interface MapNode extends NodeBase {
  kind: 'map';
  entries: MapEntry[];
}

export interface SeqNode extends NodeBase {
  kind: 'seq';
  items: ConfigNode[];
}

export interface ScalarNode extends NodeBase {
  kind: 'scalar';
  value: string | number | boolean | bigint | null;
  /** The file position of the character at `offset` in the (uninterpolated) value, best effort. */
  at(offset: number): Pos;
}

export type ConfigNode = MapNode | SeqNode | ScalarNode;

export interface SourceError {
  pos: Pos;
  message: string;
}

export interface ParsedSource {
  root: ConfigNode | undefined;
  errors: SourceError[];
}

const FILE: Origin = { from: 'file' };

/** `intAsBigInt`: integers as bigint (exact beyond 2^53; test records need that). */
export function parseYamlSource(text: string, options: { intAsBigInt?: boolean } = {}): ParsedSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, ...(options.intAsBigInt ? { intAsBigInt: true } : {}) });
  const posOf = (offset: number): Pos => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    return {
      root: undefined,
      errors: doc.errors.map((e) => ({
        pos: e.linePos?.[0] ? { line: e.linePos[0].line, column: e.linePos[0].col } : posOf(e.pos[0]),
        // yaml's pretty messages append the source excerpt after the first line.
        message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
      })),
    };
  }
  const errors: SourceError[] = [];
  const convert = (node: unknown, depth: number): ConfigNode | undefined => {
    if (node === null || node === undefined) return undefined;
    if (depth > 64) {
      errors.push({ pos: { line: 1, column: 1 }, message: 'nesting deeper than 64 levels (an alias cycle?)' });
      return undefined;
    }
    if (isAlias(node)) return convert(node.resolve(doc as Document), depth + 1);
    const at = posOf((node as YamlNode).range?.[0] ?? 0);
    if (isMap(node)) {
      const entries: MapEntry[] = [];
      for (const pair of node.items) {
        const keyNode = pair.key as YamlNode | null;
        const keyPos = keyNode?.range ? posOf(keyNode.range[0]) : at;
        if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
          errors.push({ pos: keyPos, message: 'keys must be plain names' });
          continue;
        }
        entries.push({ key: String(keyNode.value), keyPos, value: convert(pair.value, depth + 1) });
      }
      return { kind: 'map', pos: at, origin: FILE, entries };
    }
    if (isSeq(node)) {
      return { kind: 'seq', pos: at, origin: FILE, items: node.items.map((item) => convert(item, depth + 1) ?? nullScalar(at)) };
    }
    if (isScalar(node)) {
      const value = node.value;
      const scalarValue = value instanceof Date ? value.toISOString() : (value as ScalarNode['value']);
      return { kind: 'scalar', pos: at, origin: FILE, value: scalarValue, at: scalarLocator(text, posOf, node) };
    }
    return undefined;
  };
  return { root: convert(doc.contents, 0), errors };
}

function nullScalar(pos: Pos): ScalarNode {
  return { kind: 'scalar', pos, origin: FILE, value: null, at: () => pos };
}

/**
 * Maps an offset inside a scalar's value to its file position: exact for one-line plain
 * and quoted scalars (escape sequences aside) and for literal blocks (`|`), the scalar's
 * start otherwise.
 */
function scalarLocator(text: string, posOf: (offset: number) => Pos, node: Scalar): (offset: number) => Pos {
  const start = node.range?.[0] ?? 0;
  const end = node.range?.[1] ?? start;
  const base = posOf(start);
  switch (node.type) {
    case Scalar.PLAIN:
    case Scalar.QUOTE_DOUBLE:
    case Scalar.QUOTE_SINGLE: {
      if (text.slice(start, end).includes('\n')) return () => base;
      const shift = node.type === Scalar.PLAIN ? 0 : 1;
      return (offset) => ({ line: base.line, column: base.column + shift + offset });
    }
    case Scalar.BLOCK_LITERAL: {
      const headerEnd = text.indexOf('\n', start);
      if (headerEnd < 0 || headerEnd >= end) return () => base;
      const firstLine = base.line + 1;
      const firstContent = text.slice(headerEnd + 1, end).split('\n').find((l) => l.trim() !== '') ?? '';
      const indent = /^ */.exec(firstContent)![0].length;
      const value = String(node.value);
      return (offset) => {
        const before = value.slice(0, Math.max(0, Math.min(offset, value.length)));
        const lines = before.split('\n');
        return { line: firstLine + lines.length - 1, column: indent + lines[lines.length - 1]!.length + 1 };
      };
    }
    default:
      return () => base;
  }
}

/** A node for a value that did not come from the file (an env var or a default), placed at `pos`. */
export function syntheticNode(value: unknown, pos: Pos, origin: Origin): ConfigNode {
  if (Array.isArray(value)) return { kind: 'seq', pos, origin, items: value.map((v) => syntheticNode(v, pos, origin)) };
  if (value !== null && typeof value === 'object') {
    return {
      kind: 'map',
      pos,
      origin,
      entries: Object.entries(value).map(([key, v]) => ({ key, keyPos: pos, value: syntheticNode(v, pos, origin) })),
    };
  }
  return { kind: 'scalar', pos, origin, value: (value ?? null) as ScalarNode['value'], at: () => pos };
}

/** What a node is, for messages: `a list`, `an object`, `the text "abc"`, `the number 3`. */
export function describeNode(node: ConfigNode, secret = false): string {
  if (node.kind === 'map') return 'an object';
  if (node.kind === 'seq') return 'a list';
  if (secret) return 'a value (not shown: secret)';
  const v = node.value;
  if (v === null) return 'null';
  if (typeof v === 'string') return `"${v.length > 60 ? `${v.slice(0, 57)}...` : v}"`;
  return `${typeof v === 'boolean' ? 'the boolean' : 'the number'} ${String(v)}`;
}
