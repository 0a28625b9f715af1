import type { Message, Producer } from 'kafkajs';
import { DLQ_HEADERS, readDeadLetterHeaders } from '../core/dlq/dead-letter.js';
import { isUnavailable } from '../core/errors/errors.js';
import { BLOCKING_RETRY, withRetry } from '../core/errors/retry.js';
import type { Logger } from '../core/log/logger.js';
import { FlushAbandonedError } from './flusher.js';

/**
 * Where a pipeline's dead letters go (the flusher sends a batch's before its commit and waits
 * for them): the DLQ topic through the input's brokers (kafka input), or, for an input with
 * no broker (stdin, generate), JSON lines on stderr, one a dead letter, with the reason.
 */
export interface DeadLetterSink {
  /** For logs: `topic sluice.x.dlq`, `stderr`. */
  readonly target: string;
  connect(): Promise<void>;
  /** Sends and waits until they are durable (blocking on an outage while `owned`). */
  send(messages: Message[], owned: () => boolean, heartbeat: (() => Promise<void>) | undefined): Promise<void>;
  close(): Promise<void>;
}

/** Dead letters per produce request (each can be up to 1 MiB). */
const DLQ_CHUNK = 200;

/** The DLQ topic, produced to with acks=all; broker faults are waited out while the partition is this member's. */
export class KafkaDeadLetters implements DeadLetterSink {
  readonly target: string;

  constructor(
    private readonly producer: Pick<Producer, 'connect' | 'disconnect' | 'send'>,
    private readonly topic: string,
    private readonly log: Logger,
  ) {
    this.target = `topic ${topic}`;
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  async send(messages: Message[], owned: () => boolean, heartbeat: (() => Promise<void>) | undefined): Promise<void> {
    for (let i = 0; i < messages.length; i += DLQ_CHUNK) {
      const chunk = messages.slice(i, i + DLQ_CHUNK);
      await withRetry(() => this.producer.send({ topic: this.topic, acks: -1, messages: chunk }), {
        policy: BLOCKING_RETRY,
        retriable: isUnavailable,
        stillWanted: owned,
        ...(heartbeat ? { whileWaiting: heartbeat } : {}),
        abandoned: (cause) => new FlushAbandonedError('Kafka (DLQ): partition lost while waiting', { cause }),
        onRetry: (error, attempt, retryInMs) => this.log.warn({ dependency: 'Kafka (DLQ)', attempt, retryInMs, err: error }, 'Kafka (DLQ) unavailable, waiting (nothing is dropped)'),
      });
    }
  }

  close(): Promise<void> {
    return this.producer.disconnect();
  }
}

/**
 * Dead letters as JSON lines on a stream (stderr): `{"dead_letter": {reason, error, processor,
 * topic, partition, offset, timestamp}, "key", "value", "headers"}`. Key and value are the
 * original bytes as UTF-8 text when they are valid UTF-8 (JSON lines are), else base64 under
 * `key_base64` / `value_base64`; `include_original: false` has already emptied the value.
 */
export class StreamDeadLetters implements DeadLetterSink {
  readonly target = 'stderr';

  constructor(private readonly stream: NodeJS.WritableStream = process.stderr) {}

  async connect(): Promise<void> {}

  async send(messages: Message[]): Promise<void> {
    const text = messages.map((m) => `${JSON.stringify(deadLetterJson(m))}\n`).join('');
    await new Promise<void>((resolve, reject) => {
      this.stream.write(text, (error) => (error ? reject(error) : resolve()));
    });
  }

  async close(): Promise<void> {}
}

/** The JSON form of a dead letter (StreamDeadLetters writes it; tests read it). */
export function deadLetterJson(m: Message): Record<string, unknown> {
  const headers = (m.headers ?? {}) as Record<string, Buffer | string | undefined>;
  const info = readDeadLetterHeaders(headers as never);
  const ours = new Set<string>(Object.values(DLQ_HEADERS));
  const own: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (!ours.has(name) && value !== undefined) own[name] = value.toString();
  const out: Record<string, unknown> = { dead_letter: info };
  Object.assign(out, bytesField('key', m.key), bytesField('value', m.value));
  if (Object.keys(own).length > 0) out.headers = own;
  return out;
}

function bytesField(name: string, value: Buffer | string | null | undefined): Record<string, unknown> {
  if (value === null || value === undefined) return { [name]: null };
  if (typeof value === 'string') return { [name]: value };
  const text = value.toString('utf8');
  return Buffer.from(text, 'utf8').equals(value) ? { [name]: text } : { [`${name}_base64`]: value.toString('base64') };
}
