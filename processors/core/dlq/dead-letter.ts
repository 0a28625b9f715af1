import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

/**
 * The headers every Sluice dead-letter record carries, defined once for every consumer
 * (the normalizer today, export pipelines and the report processor tomorrow) and for
 * the tools that read a DLQ back (inspect, redrive). Like Kafka Connect's
 * `__connect.errors.*` headers: the record itself is the original, byte for byte (key,
 * value and its own headers); what went wrong and where it came from travel beside it.
 */
export const DLQ_HEADERS = {
  /** Machine-readable reason code, e.g. `currency_mismatch` or `missing_field:customer_id`. */
  reason: 'sluice.dlq.reason',
  /** Human-readable explanation of the failure. */
  error: 'sluice.dlq.error',
  /** Topic the original record was consumed from. */
  topic: 'sluice.dlq.topic',
  /** Partition of the original record (decimal). */
  partition: 'sluice.dlq.partition',
  /** Offset of the original record (decimal). */
  offset: 'sluice.dlq.offset',
  /** The original record's Kafka timestamp (epoch milliseconds, decimal). */
  timestamp: 'sluice.dlq.timestamp',
  /** When the record was dead-lettered (epoch milliseconds, decimal). */
  failedAt: 'sluice.dlq.failed_at',
  /** Name of the processor that dead-lettered it. */
  processor: 'sluice.dlq.processor',
} as const;

/** Longer error texts are cut: a header is context, not a log file. */
const MAX_ERROR_LENGTH = 2000;

export interface DeadLetterCause {
  reason: string;
  error: string;
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  message: Pick<KafkaMessage, 'key' | 'value' | 'headers' | 'offset' | 'timestamp'>;
}

/**
 * The dead-letter record for a consumed one: the original key and value bytes untouched,
 * its own headers kept, and the `sluice.dlq.*` headers added (replacing any earlier
 * ones, so a record that fails again after a redrive tells its latest story).
 */
export function deadLetterMessage(record: ConsumedRecord, cause: DeadLetterCause, processor: string, now: number = Date.now()): Message {
  const headers: IHeaders = {};
  const ours = new Set<string>(Object.values(DLQ_HEADERS));
  for (const [name, value] of Object.entries(record.message.headers ?? {})) {
    if (!ours.has(name) && value !== undefined) headers[name] = value;
  }
  headers[DLQ_HEADERS.reason] = cause.reason;
  headers[DLQ_HEADERS.error] = cause.error.length > MAX_ERROR_LENGTH ? `${cause.error.slice(0, MAX_ERROR_LENGTH - 1)}…` : cause.error;
  headers[DLQ_HEADERS.topic] = record.topic;
  headers[DLQ_HEADERS.partition] = String(record.partition);
  headers[DLQ_HEADERS.offset] = record.message.offset;
  headers[DLQ_HEADERS.timestamp] = record.message.timestamp;
  headers[DLQ_HEADERS.failedAt] = String(now);
  headers[DLQ_HEADERS.processor] = processor;
  return { key: record.message.key ?? null, value: record.message.value ?? null, headers };
}

export interface DeadLetterInfo {
  reason: string;
  error: string;
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  failedAt: string;
  processor: string;
}

/** Reads the `sluice.dlq.*` headers of a consumed DLQ record; undefined when it has none. */
export function readDeadLetterHeaders(headers: IHeaders | undefined): DeadLetterInfo | undefined {
  const text = (name: string): string => {
    const v = headers?.[name];
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? '' : first.toString();
  };
  if (!text(DLQ_HEADERS.reason)) return undefined;
  return {
    reason: text(DLQ_HEADERS.reason),
    error: text(DLQ_HEADERS.error),
    topic: text(DLQ_HEADERS.topic),
    partition: Number(text(DLQ_HEADERS.partition)),
    offset: text(DLQ_HEADERS.offset),
    timestamp: text(DLQ_HEADERS.timestamp),
    failedAt: text(DLQ_HEADERS.failedAt),
    processor: text(DLQ_HEADERS.processor),
  };
}
