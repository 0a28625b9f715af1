import { DLQ_REASONS } from '../core/dlq/reasons.js';
import { compileExpression, type CompiledExpression } from './expressions.js';
import type { LogConfig } from '../core/pipeline/components/index.js';
import { createLogger, type Logger } from '../core/log/logger.js';
import type { ProcessorConfig } from '../core/pipeline/pipeline.js';

/**
 * The `pipeline.processors` of a pipeline file, compiled once: each record goes through
 * them in order and comes out kept (possibly replaced), dropped (filter, dedupe) or dead
 * (a DLQ case with a reason code and the error). A dead record never stops the batch.
 *
 * State (the dedupe caches) is per input partition and is thrown away whenever the
 * partition rewinds to its committed offset (rebalance, failed flush), so that a replayed
 * record is not taken for a duplicate of itself.
 */

export type StepOutcome = { kind: 'keep'; value: unknown } | { kind: 'drop'; by: string } | { kind: 'dead'; reason: string; error: string; by: string };

export interface PartitionSteps {
  /** Synchronous when every step answered synchronously (compiled expressions), a promise otherwise. */
  run(value: unknown): StepOutcome | Promise<StepOutcome>;
}

type StepRun = (value: unknown) => StepOutcome | Promise<StepOutcome>;

interface Step {
  label: string;
  /** A fresh per-partition instance (dedupe keeps its cache there). */
  instance(): StepRun;
}

export class StepChain {
  private readonly steps: Step[];

  /** `logger`: where `log` processors write (a pino logger named `export` when not given). */
  constructor(configs: readonly ProcessorConfig[], logger?: Logger) {
    let log: Logger | undefined = logger;
    const logs = () => (log ??= createLogger({ name: 'export' }));
    this.steps = configs.map((c) => compile(c, logs));
  }

  get labels(): string[] {
    return this.steps.map((s) => s.label);
  }

  /** The chain for one partition, with empty state. */
  forPartition(): PartitionSteps {
    const runs = this.steps.map((s) => s.instance());
    const from = (start: number, value: unknown): StepOutcome | Promise<StepOutcome> => {
      let current = value;
      for (let i = start; i < runs.length; i++) {
        const outcome = runs[i]!(current);
        // Only a step that had to ask jsonata answers with a promise; the rest of the chain follows it.
        if (outcome instanceof Promise) return outcome.then((o) => (o.kind === 'keep' ? from(i + 1, o.value) : o));
        if (outcome.kind !== 'keep') return outcome;
        current = outcome.value;
      }
      return { kind: 'keep', value: current };
    };
    return { run: (value) => from(0, value) };
  }
}

/** Evaluates an expression, calling `then` with its result synchronously when it is compiled, and `fail` on an error. */
function evaluateThen(expr: CompiledExpression, value: unknown, then: (result: unknown) => StepOutcome, fail: (error: unknown) => StepOutcome): StepOutcome | Promise<StepOutcome> {
  let result: unknown;
  try {
    result = expr.evaluate(value);
  } catch (error) {
    return fail(error);
  }
  return result instanceof Promise ? result.then(then, fail) : then(result);
}

function compile(p: ProcessorConfig, logger: () => Logger): Step {
  switch (p.type) {
    case 'log':
      return logStep(p.label, p.config, logger());
    case 'mapping':
      return mappingStep(p.label, p.config);
    case 'filter':
      return filterStep(p.label, p.config);
    case 'dedupe':
      return dedupeStep(p.label, p.config.key, p.config.cache_size, p.config.window);
    case 'select':
      return { label: p.label, instance: () => (v) => fieldsStep(p.label, DLQ_REASONS.selectError, v, (o) => selectFields(o, p.config)) };
    case 'drop':
      return { label: p.label, instance: () => (v) => fieldsStep(p.label, DLQ_REASONS.dropError, v, (o) => dropFields(o, p.config)) };
  }
}

/** Logs the record (or its message expression) and keeps it, whatever the expression does. */
function logStep(label: string, config: LogConfig, logger: Logger): Step {
  const log = logger.child({ processor: label });
  const level = config.level;
  const expr = config.message !== undefined ? compileExpression(config.message) : undefined;
  const write = (record: unknown) => log[level]({ record: loggable(record) }, 'record');
  const run: StepRun = (value) => {
    if (!log.isLevelEnabled(level)) return { kind: 'keep', value };
    if (!expr) {
      write(value);
      return { kind: 'keep', value };
    }
    const failed = (error: unknown): StepOutcome => {
      log.warn({ error: expressionError(error) }, 'the log message expression failed; the record goes on');
      return { kind: 'keep', value };
    };
    return evaluateThen(expr, value, (result) => (write(expr.compiled ? result : plain(result)), { kind: 'keep', value }), failed);
  };
  return { label, instance: () => run };
}

/** Bigints as digit strings and bytes as base64 (JSON cannot hold them). */
function loggable(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(loggable);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, loggable(v)]));
  return value;
}

function mappingStep(label: string, text: string): Step {
  const expr = compileExpression(text);
  const run: StepRun = (value) =>
    evaluateThen(
      expr,
      value,
      (result) => {
        if (result === undefined) return dead(label, DLQ_REASONS.mappingError, 'the mapping yielded nothing (undefined): a field it starts from is missing');
        // Compiled results are plain already; jsonata's carry sequence flags and null prototypes.
        return { kind: 'keep', value: expr.compiled ? result : plain(result) };
      },
      (error) => dead(label, DLQ_REASONS.mappingError, expressionError(error)),
    );
  return { label, instance: () => run };
}

function filterStep(label: string, text: string): Step {
  const expr = compileExpression(text);
  const run: StepRun = (value) =>
    evaluateThen(
      expr,
      value,
      (result) => {
        if (result === true) return { kind: 'keep', value };
        if (result === false) return { kind: 'drop', by: label };
        return dead(label, DLQ_REASONS.filterError, `the filter yielded ${describe(result)}, not true or false`);
      },
      (error) => dead(label, DLQ_REASONS.filterError, expressionError(error)),
    );
  return { label, instance: () => run };
}

function dedupeStep(label: string, keyText: string, cacheSize: number, windowMs: number | undefined): Step {
  const expr = compileExpression(keyText);
  return {
    label,
    instance() {
      const seen = new DedupeCache(cacheSize, windowMs);
      return (value) =>
        evaluateThen(
          expr,
          value,
          (key) => {
            if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'bigint') {
              return dead(label, DLQ_REASONS.dedupeError, `the key expression yielded ${describe(key)}, not a string or number`);
            }
            return seen.firstSeen(String(key)) ? { kind: 'keep', value } : { kind: 'drop', by: label };
          },
          (error) => dead(label, DLQ_REASONS.dedupeError, expressionError(error)),
        );
    },
  };
}

/**
 * Recently seen keys. Without a window: two generations of a set, the current one and the
 * one before; when the current holds half the capacity it becomes the previous. So the last
 * capacity/2 to capacity keys are remembered, at one set insertion a key (an LRU's
 * delete-and-reinsert per record cost a fifth of the runner's time). With a window: each
 * key's first-seen time, forgotten after the window or beyond the capacity (oldest first).
 */
export class DedupeCache {
  private current = new Set<string>();
  private previous = new Set<string>();
  private readonly times = new Map<string, number>();

  constructor(
    private readonly capacity: number,
    private readonly windowMs: number | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** True the first time a key is seen (as far as the cache remembers); records it. */
  firstSeen(key: string): boolean {
    if (this.windowMs !== undefined) return this.firstSeenWithin(key, this.windowMs);
    if (this.current.has(key) || this.previous.has(key)) return false;
    this.current.add(key);
    if (this.current.size >= Math.max(1, this.capacity >> 1)) {
      this.previous = this.current;
      this.current = new Set();
    }
    return true;
  }

  private firstSeenWithin(key: string, windowMs: number): boolean {
    const t = this.now();
    const at = this.times.get(key);
    if (at !== undefined && t - at < windowMs) return false;
    this.times.delete(key);
    this.times.set(key, t);
    if (this.times.size > this.capacity) this.times.delete(this.times.keys().next().value!);
    return true;
  }

  get size(): number {
    return this.windowMs !== undefined ? this.times.size : this.current.size + this.previous.size;
  }
}

function fieldsStep(label: string, reason: string, value: unknown, f: (o: Record<string, unknown>) => Record<string, unknown>): StepOutcome {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return dead(label, reason, `the record is ${describe(value)}, not an object`);
  return { kind: 'keep', value: f(value as Record<string, unknown>) };
}

/** Keeps the listed (possibly dotted) paths, in list order. */
export function selectFields(record: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    const parts = path.split('.');
    let from: unknown = record;
    for (const p of parts) from = from !== null && typeof from === 'object' ? (from as Record<string, unknown>)[p] : undefined;
    if (from === undefined) continue;
    let to = out;
    for (const p of parts.slice(0, -1)) {
      if (to[p] === null || typeof to[p] !== 'object') to[p] = {};
      to = to[p] as Record<string, unknown>;
    }
    to[parts.at(-1)!] = from;
  }
  return out;
}

/** A copy without the listed (possibly dotted) paths; parents are copied, not mutated. */
export function dropFields(record: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...record };
  for (const path of paths) {
    const parts = path.split('.');
    let node = out;
    for (const p of parts.slice(0, -1)) {
      const child = node[p];
      if (child === null || typeof child !== 'object' || Array.isArray(child)) {
        node = {};
        break;
      }
      node[p] = { ...(child as Record<string, unknown>) };
      node = node[p] as Record<string, unknown>;
    }
    delete node[parts.at(-1)!];
  }
  return out;
}

function dead(by: string, reason: string, error: string): StepOutcome {
  return { kind: 'dead', reason, error, by };
}

/** JSONata results carry a `sequence` flag and null prototypes; outputs want plain values. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return Array.from(value, plain);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

function expressionError(error: unknown): string {
  const e = error as { code?: string; message?: string; position?: number };
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}${typeof e.position === 'number' ? ` (at ${e.position})` : ''}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (undefined)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(typeof value === 'bigint' ? value.toString() : value)}`;
}
