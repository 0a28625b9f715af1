import { INVALID, pathText, resolveField, type At, type Field, type Invalid, type ParseContext, type Path } from './fields.js';
import type { ConfigNode } from './source.js';
import { redpandaComponentHint } from './redpanda-names.js';
import { suggestion } from './suggest.js';

/**
 * A pipeline component (an input, a processor, an output) or a top-level section
 * (dlq, http, logger), declared in one place: name, summary, its config field(s), an
 * example that the tests lint, and `finish`, which computes defaults that depend on other
 * fields and checks rules across fields. Lint, load and docs all read these specs.
 */
export type ComponentKind = 'input' | 'processor' | 'output' | 'section';

export interface CheckContext {
  /** Reports a problem at a path relative to the component's config (its nearest present ancestor when absent). */
  report(relative: Path, message: string, fix: string): void;
  /** Reports a problem at an offset inside the text of a template at a relative path. */
  reportInValue(relative: Path, offset: number, message: string, fix: string): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ComponentSpec<Raw = any, Final = Raw> {
  readonly name: string;
  readonly kind: ComponentKind;
  /** One line: what it does. */
  readonly summary: string;
  /** Paragraphs of Markdown: semantics, guarantees, caveats. */
  readonly description?: string;
  readonly config: Field<Raw>;
  /** The component's YAML as written under its key (the section, or the list item for processors). */
  readonly example: string;
  /** Computed defaults and cross-field rules; runs only when every field parsed. */
  finish?(raw: Raw, ctx: CheckContext): Final;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FinalOf<S> = S extends ComponentSpec<any, infer F> ? F : never;

export function defineComponent<Raw, Final = Raw>(spec: ComponentSpec<Raw, Final>): ComponentSpec<Raw, Final> {
  return spec;
}

export function checkContext(ctx: ParseContext, base: Path): CheckContext & { failed: boolean } {
  const check = {
    failed: false,
    report(relative: Path, message: string, fix: string): void {
      const path = [...base, ...relative];
      check.failed = true;
      ctx.report(ctx.locate(path), path, message, fix);
    },
    reportInValue(relative: Path, offset: number, message: string, fix: string): void {
      const path = [...base, ...relative];
      const locator = ctx.locators.get(pathText(path));
      check.failed = true;
      ctx.report(locator ? locator(offset) : ctx.locate(path), path, message, fix);
    },
  };
  return check;
}

/** Parses a component's config and finishes it. */
export function parseComponent<Raw, Final>(spec: ComponentSpec<Raw, Final>, node: ConfigNode | undefined, at: At, ctx: ParseContext): Final | Invalid {
  const raw = resolveField(spec.config, node, at, ctx);
  if (raw === INVALID) return INVALID;
  if (!spec.finish) return raw as unknown as Final;
  const check = checkContext(ctx, at.path);
  const final = spec.finish(raw, check);
  return check.failed ? INVALID : final;
}

/** A top-level section declared as a component (dlq, http, logger). */
export function section<Raw, Final>(spec: ComponentSpec<Raw, Final>): Field<Final> {
  return {
    kind: spec.config.kind,
    type: spec.config.type,
    meta: spec.config.meta,
    ...(spec.config.fields ? { fields: spec.config.fields } : {}),
    parseNode: (node, at, ctx) => parseComponent(spec, node, at, ctx),
  };
}

export interface ComponentInstance<Config = unknown> {
  /** The component's name: `kafka`, `mapping`, `s3`. */
  type: string;
  /** The item's `label`, or `<type>_<index>` for processors. */
  label: string;
  config: Config;
}

const LABEL = /^[a-z][a-z0-9_]*$/;

/**
 * A value that names exactly one component by its key (`kafka:`, `- mapping: ...`),
 * optionally beside a `label`, as Redpanda Connect writes inputs, processors and outputs.
 */
export function componentChoice(
  kind: Exclude<ComponentKind, 'section'>,
  specs: readonly ComponentSpec[],
  meta: { doc: string; examples?: readonly unknown[] },
): Field<ComponentInstance> {
  const names = specs.map((s) => s.name);
  return {
    kind: 'object',
    type: kind,
    meta,
    parseNode(node, at, ctx) {
      if (node.kind !== 'map') {
        ctx.report(node.pos, at.path, `expected ${kind === 'input' ? 'an' : 'a'} ${kind} (an object naming one of: ${names.join(', ')})`, `write e.g. ${specs[0]!.name}: followed by its fields`);
        return INVALID;
      }
      let ok = true;
      const chosen = [] as { spec: ComponentSpec; entry: (typeof node.entries)[number] }[];
      for (const entry of node.entries) {
        if (entry.key === 'label') continue;
        const spec = specs.find((s) => s.name === entry.key);
        if (spec) chosen.push({ spec, entry });
        else {
          ok = false;
          ctx.report(entry.keyPos, [...at.path, entry.key], `unknown ${kind} "${entry.key}"`, redpandaComponentHint(kind, entry.key) ?? suggestion(entry.key, names, `${kind}s are`));
        }
      }
      if (chosen.length > 1) {
        const extra = chosen[1]!;
        ctx.report(extra.entry.keyPos, [...at.path, extra.entry.key], `${kind === 'input' ? 'an' : 'a'} ${kind} names exactly one component; this one also names "${chosen[0]!.spec.name}"`, kind === 'processor' ? 'make it a separate list item' : `keep one of ${chosen.map((c) => c.spec.name).join(', ')}`);
        return INVALID;
      }
      const only = chosen[0];
      if (!only) {
        if (ok) ctx.report(node.pos, at.path, `names no ${kind}`, `add one of: ${names.join(', ')}`);
        return INVALID;
      }
      let label = `${only.spec.name}${at.path[at.path.length - 1]?.startsWith('[') ? `_${at.path[at.path.length - 1]!.slice(1, -1)}` : ''}`;
      const labelEntry = node.entries.find((e) => e.key === 'label');
      if (labelEntry) {
        const v = labelEntry.value;
        if (v?.kind === 'scalar' && typeof v.value === 'string' && LABEL.test(v.value)) label = v.value;
        else {
          ok = false;
          ctx.report(v?.pos ?? labelEntry.keyPos, [...at.path, 'label'], 'a label must be lower-case letters, digits and _, starting with a letter', 'write e.g. label: flatten_envelope');
        }
      }
      const at2 = { path: [...at.path, only.spec.name], pos: only.entry.keyPos };
      ctx.positions.set(pathText(at2.path), only.entry.keyPos);
      const config = parseComponent(only.spec, only.entry.value, at2, ctx);
      if (config === INVALID || !ok) return INVALID;
      return { type: only.spec.name, label, config };
    },
  };
}
