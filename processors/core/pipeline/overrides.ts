import type { ParseContext } from './fields.js';
import { parseYamlSource, syntheticNode, type ConfigNode, type MapEntry, type MapNode, type Pos } from './source.js';

/**
 * `--set path=value` on `sluice run` (and lint): changes a loaded pipeline file before it is
 * checked, as Redpanda Connect's `--set` does. `path` is dotted (`output.file.directory`,
 * `pipeline.processors.0.mapping`); `value` is YAML (`stdin`, `10`, `{directory: ./lake}`).
 * A bare component name set on `input` or `output` replaces the whole block with that
 * component at its defaults: `--set input=stdin` is `input: {stdin: {}}`. Problems in a set
 * value are reported at the key it replaced, saying it came from --set.
 */
export interface Override {
  path: string[];
  value: string;
  /** As written: `input=stdin`. */
  text: string;
}

/** Parses `path=value`; throws a message naming the argument when it has no `=` or no path. */
export function parseOverride(arg: string): Override {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new Error(`--set ${arg}: write path=value, e.g. --set input=stdin or --set output.file.directory=./lake`);
  const path = arg.slice(0, eq).trim().split('.');
  if (path.some((p) => p === '')) throw new Error(`--set ${arg}: the path has an empty part`);
  return { path, value: arg.slice(eq + 1), text: arg };
}

const COMPONENT_BLOCKS = new Set(['input', 'output']);

/** Applies the overrides to the file's root mapping, in order. */
export function applyOverrides(root: MapNode, overrides: readonly Override[], ctx: ParseContext): void {
  for (const o of overrides) {
    const parsed = parseYamlSource(o.value, { intAsBigInt: false });
    if (parsed.errors.length > 0) {
      ctx.report(root.pos, o.path, `--set ${o.text}: the value is not YAML (${parsed.errors[0]!.message})`, 'quote it, e.g. --set \'path="a b"\'');
      continue;
    }
    let value: ConfigNode | undefined = parsed.root;
    const origin = { from: 'flag' as const, text: o.text };
    if (o.path.length === 1 && COMPONENT_BLOCKS.has(o.path[0]!) && value?.kind === 'scalar' && typeof value.value === 'string') {
      value = syntheticNode({ [value.value]: {} }, root.pos, origin);
    }
    setAt(root, o.path, value, origin, ctx, o);
  }
}

function setAt(root: MapNode, path: string[], value: ConfigNode | undefined, origin: { from: 'flag'; text: string }, ctx: ParseContext, o: Override): void {
  let node: ConfigNode = root;
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    const last = i === path.length - 1;
    if (node.kind === 'map') {
      let entry: MapEntry | undefined = node.entries.find((e) => e.key === key);
      if (!entry) {
        entry = { key, keyPos: node.pos, value: undefined };
        node.entries.push(entry);
      }
      if (last) {
        entry.value = value ? relocate(value, entry.value?.pos ?? entry.keyPos, origin) : undefined;
        return;
      }
      if (!entry.value || entry.value.kind === 'scalar') entry.value = { kind: 'map', pos: entry.keyPos, origin, entries: [] };
      node = entry.value;
    } else if (node.kind === 'seq' && /^\d+$/.test(key) && Number(key) < node.items.length) {
      const index = Number(key);
      if (last) {
        if (value) node.items[index] = relocate(value, node.items[index]!.pos, origin);
        return;
      }
      node = node.items[index]!;
    } else {
      ctx.report(node.pos, path.slice(0, i), `--set ${o.text}: ${path.slice(0, i).join('.')} is ${node.kind === 'seq' ? 'a list' : 'a value'}, it has no ${key}`, node.kind === 'seq' ? `index it with a number below ${node.items.length}` : 'set the parent instead');
      return;
    }
  }
}

/** The set value's nodes placed at the key they replace, marked as from --set. */
function relocate(node: ConfigNode, pos: Pos, origin: { from: 'flag'; text: string }): ConfigNode {
  if (node.kind === 'map') return { ...node, pos, origin, entries: node.entries.map((e) => ({ ...e, keyPos: pos, value: e.value ? relocate(e.value, pos, origin) : undefined })) };
  if (node.kind === 'seq') return { ...node, pos, origin, items: node.items.map((item) => relocate(item, pos, origin)) };
  return { ...node, pos, origin, at: () => pos };
}
