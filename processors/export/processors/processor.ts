import type { Logger } from '../../core/log/logger.js';
import type { ComponentSpec } from '../../core/pipeline/component.js';
import type { CompiledExpression } from '../expressions.js';

/**
 * The interface every export processor implements (mapping, filter, dedupe, ...). A
 * processor component is declared in one file (processors/export/processors/<name>.ts): its
 * spec (the config fields lint, load and docs read) and its constructor side by side, and one
 * line in the list of processors/export/processors/index.ts.
 *
 * A processor turns a record into an outcome: kept (possibly replaced), dropped (filter,
 * dedupe) or dead (a DLQ case with a reason code of core/dlq/reasons.ts and the error). A
 * dead record never stops the batch. `create` compiles the config once; the function it
 * returns makes a fresh per-partition instance (dedupe keeps its cache there), thrown away
 * whenever the partition rewinds to its committed offset.
 */
export type StepOutcome = { kind: 'keep'; value: unknown } | { kind: 'drop'; by: string } | { kind: 'dead'; reason: string; error: string; by: string };

/** One record through one processor: synchronous when the processor answered synchronously (compiled expressions). */
export type StepRun = (value: unknown) => StepOutcome | Promise<StepOutcome>;

export interface ProcessorContext {
  /** The item's label (`mapping_0`, or its `label`): the `by` of drops and dead letters. */
  label: string;
  /** The pipeline's logger (created on first use). */
  logger(): Logger;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ProcessorComponent<Config = any> {
  readonly spec: ComponentSpec<unknown, Config>;
  /** Compiles one pipeline item (no I/O); returns the factory of its per-partition instances. */
  create(config: Config, ctx: ProcessorContext): () => StepRun;
}

/** Evaluates an expression, calling `then` with its result synchronously when it is compiled, and `fail` on an error. */
export function evaluateThen(expr: CompiledExpression, value: unknown, then: (result: unknown) => StepOutcome, fail: (error: unknown) => StepOutcome): StepOutcome | Promise<StepOutcome> {
  let result: unknown;
  try {
    result = expr.evaluate(value);
  } catch (error) {
    return fail(error);
  }
  return result instanceof Promise ? result.then(then, fail) : then(result);
}

export function dead(by: string, reason: string, error: string): StepOutcome {
  return { kind: 'dead', reason, error, by };
}

/** JSONata results carry a `sequence` flag and null prototypes; outputs want plain values. */
export function plain(value: unknown): unknown {
  if (Array.isArray(value)) return Array.from(value, plain);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

export function expressionError(error: unknown): string {
  const e = error as { code?: string; message?: string; position?: number };
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}${typeof e.position === 'number' ? ` (at ${e.position})` : ''}`;
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing (undefined)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(typeof value === 'bigint' ? value.toString() : value)}`;
}

/** A processor that needs a record to be an object (select, drop): anything else is dead with `reason`. */
export function objectStep(label: string, reason: string, value: unknown, f: (o: Record<string, unknown>) => Record<string, unknown>): StepOutcome {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return dead(label, reason, `the record is ${describe(value)}, not an object`);
  return { kind: 'keep', value: f(value as Record<string, unknown>) };
}
