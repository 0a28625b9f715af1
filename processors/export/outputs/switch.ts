import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { componentChoice, defineComponent, type ComponentInstance } from '../../core/pipeline/component.js';
import { bool, expression, list, object, oneOf, type AnyField, type Field, type Infer } from '../../core/pipeline/fields.js';
import { compileExpression, type CompiledExpression } from '../expressions.js';
import { OUTPUT_COMPONENTS, outputComponent } from './index.js';
import type { Output, OutputBatch, OutputComponent, OutputContext, OutputRecord, PreparedWrite, RejectedRow, WriteContext } from './output.js';

/**
 * The `switch` output (Redpanda Connect's): each record goes to the output of the first case
 * whose `check` is true, or, with `continue: true` on a matching case, also to the cases after it.
 *
 * What a flush means with several outputs: the cases' writes of a partition's batch are one
 * flush with one commit of the input offsets, so their commit protocols must compose. Any
 * number of outputs with idempotent writes (`offsets: 'consumer'`: s3) compose: all written,
 * then the consumer commits. At most one case may commit the offsets itself (kafka: its
 * transaction; sql: its database transaction): the idempotent cases are written first, then
 * that case writes and commits the offsets, so a crash before its commit replays the batch
 * into the same object keys and the same (aborted) transaction. Two such cases would be two
 * transactions with no atomic commit between them: lint refuses it, with the fix (one kafka
 * case with an interpolated topic routes to many topics in one transaction).
 */

/** The other outputs, read when a switch is parsed (a module cycle: index.ts lists this file). */
function caseOutputs() {
  return OUTPUT_COMPONENTS.filter((c) => c.spec.name !== 'switch').map((c) => c.spec);
}

/** `output:` of a case: one output component, chosen among all but switch (resolved lazily, see caseOutputs). */
const caseOutput: Field<ComponentInstance> = {
  kind: 'object',
  type: 'output',
  meta: { doc: 'The output this case writes to: any output but `switch`, written as under `output:`.', examples: [{ kafka: { topic: 'sluice.deposits' } }] },
  parseNode(node, at, ctx) {
    return componentChoice('output', caseOutputs(), caseOutput.meta).parseNode(node, at, ctx);
  },
};

const config = object(
  {
    cases: list(
      object(
        {
          check: expression({ doc: 'A JSONata expression over the record: `true` routes it to this case. Unset: every record matches (a default case, last).', optional: true, examples: ['event_type = "deposit_made"'] }),
          output: caseOutput as AnyField as Field<ComponentInstance>,
          continue: bool({ doc: 'After a match, go on testing the cases after this one (the record may go to several outputs).', default: false }),
        },
        { doc: 'a case', examples: [{ check: 'event_type = "deposit_made"', output: { kafka: { topic: 'sluice.deposits' } } }] },
      ),
      { doc: 'The cases, tested in order.', minItems: 1 },
    ),
    unmatched: oneOf(['dlq', 'drop'] as const, { doc: 'A record no case matches: `dlq` (reason `no_route`) or `drop` (committed with the batch, counted as written nowhere).', default: 'dlq' }),
  },
  { doc: 'Switch output settings.' },
);

export type SwitchOutputConfig = Infer<typeof config>;

/** Who commits the input offsets of a component's flushes (outputs/output.ts): the consumer group unless the component says it does. */
function offsetsOf(type: string): 'consumer' | 'output' {
  return outputComponent(type).offsets ?? 'consumer';
}

export const switchOutputSpec = defineComponent({
  name: 'switch',
  kind: 'output',
  summary: "Routes each record to the output of the first case whose JSONata check is true (or of every matching case with `continue: true`), in one flush and one commit of the input's offsets.",
  description: [
    "Cases' outputs share the partition's batch: a flush writes every case's part, then commits the input offsets once. Outputs with idempotent writes (s3) combine freely; at most one case may be an output that commits the offsets in its own transaction (kafka, sql), and it commits last, so a crash replays the whole batch: exactly once holds for every case. To send records to several Kafka topics, use one kafka case with an interpolated topic (`topic: events.${data.event_type}`): one transaction.",
    'The batch is flushed at the smallest `batching` limits of its cases. A record no case matches goes to the DLQ (`no_route`) or is dropped (`unmatched: drop`); a check that yields no boolean or fails sends it to the DLQ (`route_error`).',
  ].join('\n\n'),
  config,
  example: [
    'switch:',
    '  cases:',
    '    - check: event_type = "deposit_made"',
    '      output:',
    '        kafka:',
    '          topic: sluice.deposits',
    '          key: agent_id',
    '    - output:',
    '        s3:',
    '          bucket: sluice-lake',
    '          path: other/${topic}+${partition}+${first_offset}.jsonl',
    '          format: jsonl',
  ].join('\n'),
  finish(c, ctx): SwitchOutputConfig {
    const committing = c.cases.map((k, i) => ({ i, type: k.output.type })).filter((k) => offsetsOf(k.type) === 'output');
    for (const extra of committing.slice(1)) {
      ctx.report(
        ['cases', `[${extra.i}]`, 'output', extra.type],
        `a second output that commits the input offsets itself (${extra.type}; case [${committing[0]!.i}] is ${committing[0]!.type}): two transactions cannot commit one batch atomically`,
        committing.every((k) => k.type === 'kafka')
          ? 'merge the kafka cases into one with an interpolated topic, e.g. topic: events.${data.event_type}, or run a second pipeline'
          : 'keep one kafka or sql case per switch and run the other in a pipeline of its own (its own consumer group)',
      );
    }
    c.cases.forEach((k, i) => {
      if (k.check === undefined && i < c.cases.length - 1 && !k.continue) {
        ctx.report(['cases', `[${i}]`], `case [${i}] has no check, so it takes every record and the cases after it are never reached`, 'add a check, set continue: true, or move it last');
      }
    });
    return c;
  },
});

/** A partition's records, routed to the cases at flush (a check may need jsonata's asynchronous evaluation). */
class SwitchBatch implements OutputBatch {
  readonly records: OutputRecord[] = [];

  constructor(readonly children: OutputBatch[]) {}

  add(record: OutputRecord): undefined {
    this.records.push(record);
    return undefined;
  }

  get rows(): number {
    return this.records.length;
  }
}

interface Case {
  check: CompiledExpression | undefined;
  continue: boolean;
  output: Output;
}

export class SwitchOutput implements Output<SwitchBatch> {
  readonly type = 'switch';
  readonly offsets: 'consumer' | 'output';
  readonly batching: Output['batching'];
  readonly describe: Record<string, unknown>;
  private readonly cases: Case[];
  /** The case that commits the offsets (kafka, sql), written last; undefined when every case is idempotent. */
  private readonly committer: Case | undefined;

  constructor(
    private readonly config: SwitchOutputConfig,
    ctx: OutputContext,
  ) {
    this.cases = config.cases.map((k, i) => ({
      check: k.check !== undefined ? compileExpression(k.check) : undefined,
      continue: k.continue,
      output: outputComponent(k.output.type).create(k.output.config, { ...ctx, logger: ctx.logger.child({ case: i, output: k.output.type }) }),
    }));
    this.committer = this.cases.find((k) => k.output.offsets === 'output');
    this.offsets = this.committer ? 'output' : 'consumer';
    const outs = this.cases.map((k) => k.output);
    this.batching = {
      count: Math.min(...outs.map((o) => o.batching.count)),
      bytes: Math.min(...outs.map((o) => o.batching.bytes)),
      period: Math.min(...outs.map((o) => o.batching.period)),
    };
    this.describe = { cases: outs.map((o) => ({ output: o.type, ...o.describe })), unmatched: config.unmatched };
  }

  async connect(): Promise<void> {
    for (const k of this.cases) await k.output.connect();
  }

  async check(): Promise<void> {
    for (const k of this.cases) await k.output.check();
  }

  openBatch(topic: string, partition: number): SwitchBatch {
    return new SwitchBatch(this.cases.map((k) => k.output.openBatch(topic, partition)));
  }

  committedOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, bigint>> {
    return this.committer!.output.committedOffsets!(topic, partitions);
  }

  async write(batch: SwitchBatch, ctx: WriteContext): Promise<PreparedWrite> {
    const rejected: RejectedRow[] = [];
    for (const record of batch.records) {
      let matched = false;
      try {
        for (let i = 0; i < this.cases.length; i++) {
          const k = this.cases[i]!;
          if (k.check && !(await matches(k.check, record.value))) continue;
          matched = true;
          const refused = batch.children[i]!.add(record);
          if (refused) rejected.push({ ...refused, record });
          if (!k.continue) break;
        }
      } catch (error) {
        if (!(error instanceof RouteError)) throw error;
        rejected.push({ reason: DLQ_REASONS.routeError, error: error.message, record });
        continue;
      }
      if (!matched && this.config.unmatched === 'dlq') rejected.push({ reason: DLQ_REASONS.noRoute, error: 'the record matched no case of the switch output', record });
    }
    // Idempotent cases first (all of them written), then the one that commits the offsets.
    const prepared: PreparedWrite[] = [];
    const abortAll = () => Promise.all(prepared.map((p) => p.abort().catch(() => undefined)));
    try {
      const order = this.cases.map((k, i) => ({ k, i })).sort((a, b) => Number(a.k === this.committer) - Number(b.k === this.committer));
      for (const { k, i } of order) {
        if (batch.children[i]!.rows === 0 && k !== this.committer) continue; // the committer always runs: it commits the offsets
        prepared.push(await k.output.write(batch.children[i]!, ctx));
      }
    } catch (error) {
      await abortAll();
      throw error;
    }
    return {
      rejected: [...rejected, ...prepared.flatMap((p) => p.rejected)],
      stats: {
        bytes: prepared.reduce((n, p) => n + p.stats.bytes, 0),
        objects: prepared.reduce((n, p) => n + p.stats.objects, 0),
      },
      commit: async () => {
        for (const p of prepared) await p.commit();
      },
      abort: async () => {
        await abortAll();
      },
    };
  }

  assigned(partitions: Readonly<Record<string, readonly number[]>>): void {
    for (const k of this.cases) k.output.assigned?.(partitions);
  }

  async close(): Promise<void> {
    for (const k of this.cases) await k.output.close();
  }
}

class RouteError extends Error {}

async function matches(check: CompiledExpression, value: unknown): Promise<boolean> {
  let result: unknown;
  try {
    result = await check.evaluate(value);
  } catch (error) {
    throw new RouteError(`a case check failed: ${(error as Error).message}`);
  }
  if (typeof result !== 'boolean') throw new RouteError(`a case check yielded ${result === undefined ? 'nothing' : JSON.stringify(result)}, not true or false`);
  return result;
}

/** The switch output component: its spec and its constructor. */
export const switchOutput: OutputComponent<SwitchOutputConfig> = {
  spec: switchOutputSpec,
  create: (config, ctx) => new SwitchOutput(config, ctx),
};
