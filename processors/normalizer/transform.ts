import type { Message } from 'kafkajs';
import { deadLetterMessage, type ConsumedRecord } from '../core/dlq/dead-letter.js';
import type { StateTransaction } from '../core/state/state-stores.js';
import { parseCdcRecord, type CdcRecord } from './cdc.js';
import { copyKind, dedupeKey, expireWindow, isDuplicate, remember, type DedupeOptions } from './dedupe.js';
import { toEnvelope, type AgentEventEnvelope, type EnvelopeContract } from './envelope.js';
import { decide, REASONS, type RuleOptions } from './rules.js';

/**
 * One chunk of consumed CDC records routed to what the transaction will write: Avro
 * events for the events topic (key agent_id) and dead letters (the original record with
 * reason headers) for the DLQ. Routed once per chunk: a retried transaction writes the
 * very same messages again.
 */
export interface RoutedChunk {
  events: Message[];
  deadLetters: Message[];
  stats: ChunkStats;
}

/** Counts per label, added to the metrics only once the transaction has committed. */
export interface ChunkStats {
  /** By change kind: c, r, u, d, t, m, tombstone, heartbeat, unparseable. */
  records: Record<string, number>;
  events: Record<string, number>;
  deadLetters: Record<string, number>;
  ignored: Record<string, number>;
  /** Copies of events already emitted, not emitted again, by kind (insert, snapshot). */
  duplicates: Record<string, number>;
  /** Events emitted though older than the dedupe window (possible copies it forgot), by kind. */
  beyondWindow: Record<string, number>;
}

export interface RouteOptions {
  rules: RuleOptions;
  contract: EnvelopeContract;
  /** Avro in Confluent wire format under the registered schema id. */
  encode: (envelope: AgentEventEnvelope) => Promise<Buffer>;
  /** Name written into the sluice.dlq.processor header. */
  processor: string;
  now?: () => number;
  /** Durable dedupe by event_id: the partition's state as this transaction sees it. */
  dedupe?: { state: StateTransaction; options: DedupeOptions };
}

export async function routeRecords(records: readonly ConsumedRecord[], options: RouteOptions): Promise<RoutedChunk> {
  const out: RoutedChunk = { events: [], deadLetters: [], stats: { records: {}, events: {}, deadLetters: {}, ignored: {}, duplicates: {}, beyondWindow: {} } };
  const now = options.now ?? Date.now;
  const bump = (counts: Record<string, number>, label: string) => void (counts[label] = (counts[label] ?? 0) + 1);
  const chunkTime = now();
  if (options.dedupe) expireWindow(options.dedupe.state, chunkTime);

  for (const record of records) {
    const change = parseCdcRecord(record.message.value);
    bump(out.stats.records, kindLabel(change));
    const decision = decide(change, options.rules);
    switch (decision.action) {
      case 'ignore':
        bump(out.stats.ignored, decision.kind);
        break;
      case 'dead-letter':
        bump(out.stats.deadLetters, decision.reason);
        out.deadLetters.push(deadLetterMessage(record, decision, options.processor, now()));
        break;
      case 'event': {
        const kind = change.kind === 'change' ? copyKind(change.op) : 'insert';
        const key = options.dedupe ? dedupeKey(decision.event.eventId) : '';
        if (options.dedupe && isDuplicate(options.dedupe.state, key)) {
          bump(out.stats.duplicates, kind);
          break;
        }
        const envelope = toEnvelope(decision.event, options.contract);
        let value: Buffer;
        try {
          value = await options.encode(envelope);
        } catch (error) {
          bump(out.stats.deadLetters, REASONS.schemaViolation);
          const cause = { reason: REASONS.schemaViolation, error: `the contract's v${options.contract.version} rejects the event: ${(error as Error).message}` };
          out.deadLetters.push(deadLetterMessage(record, cause, options.processor, now()));
          break;
        }
        if (options.dedupe && remember(options.dedupe.state, key, decision.event.receivedAtMicros, chunkTime, options.dedupe.options) === 'beyond-window') {
          bump(out.stats.beyondWindow, kind);
        }
        bump(out.stats.events, decision.event.eventType);
        // The CDC record's timestamp travels on, so a replay keeps the original times.
        out.events.push({ key: decision.event.agentId, value, timestamp: record.message.timestamp });
        break;
      }
    }
  }
  return out;
}

function kindLabel(change: CdcRecord): string {
  return change.kind === 'change' ? change.op : change.kind === 'truncate' ? 't' : change.kind === 'message' ? 'm' : change.kind;
}
