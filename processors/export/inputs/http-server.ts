import Fastify, { type FastifyInstance } from 'fastify';
import { parse as losslessParse, stringify as losslessStringify } from 'lossless-json';
import { ApiKeyCheck, MIN_API_KEY_LENGTH, refuseKeyInQuery } from '../../core/http/api-key.js';
import { defineComponent } from '../../core/pipeline/component.js';
import { byteSize, duration, int, list, object, string, type Infer } from '../../core/pipeline/fields.js';
import { StreamDeadLetters } from '../dead-letters.js';
import type { Input, InputComponent, InputContext, InputHandler } from './input.js';
import { LocalDelivery, type ConsumedRecordInput, type RecordSource } from './local-delivery.js';
import { within } from '../../core/runtime/timeouts.js';

/**
 * The `http_server` input: clients POST a JSON array of records; the answer is 202 only once
 * every record of the request is durable at the pipeline's output (its flush committed: the
 * objects in S3, the rows in the warehouse, the messages in the Kafka topic) or in the DLQ.
 *
 * Why an input of the pipeline and not a front that writes to Kafka and answers: with a Kafka
 * topic in between, "durable" would mean "in that topic" and a second pipeline would be needed
 * to reach the target; as an input, 202 means the records are where the pipeline writes them,
 * and a front to Kafka is this input with `output: kafka` (202 once the transaction holding the
 * records committed). The ingest API stays the way domain events enter (validation, Postgres).
 *
 * Delivery is at least once for the client: a request that gets no 202 (a crash, a timeout, a
 * 503) must be sent again, and its records may then be written twice if the first attempt had
 * committed just before the failure: give records an id and dedupe downstream.
 */

const config = object(
  {
    address: string({ doc: 'Interface to listen on. Loopback by default; `0.0.0.0` behind a load balancer or in a container.', default: '127.0.0.1', minLength: 1 }),
    port: int({ doc: 'Port to listen on (0: any free port, logged at start).', default: 9470, min: 0, max: 65535 }),
    path: string({ doc: 'The path records are POSTed to.', default: '/records', pattern: /^\/[A-Za-z0-9._~\/-]*$/, patternFix: 'write a path such as /records' }),
    api_keys: list(string({ doc: `an API key (at least ${MIN_API_KEY_LENGTH} characters)`, minLength: MIN_API_KEY_LENGTH }), {
      doc: 'Keys clients send in the `X-API-Key` header, as for the ingest API (several at once for a rotation; an item may hold several, comma-separated). A key in the query string is refused with 400 and never logged.',
      commaSeparated: true,
      minItems: 1,
      secret: true,
      env: ['SLUICE_HTTP_INPUT_API_KEY'],
    }),
    max_body_bytes: byteSize({ doc: 'Largest request body; a bigger one is answered 413.', default: '1MiB', min: 1024, max: 64 * 1024 ** 2 }),
    max_records: int({ doc: 'Most records a request may hold; more is answered 413.', default: 1000, min: 1, max: 100_000 }),
    max_pending: int({ doc: 'Most records waiting to become durable; a request that would go beyond is answered 429 with Retry-After (backpressure: memory stays bounded).', default: 20_000, min: 1 }),
    timeout: duration({ doc: 'How long a request waits for its records to become durable before it is answered 503 (send it again: at least once).', default: '30s', min: 100 }),
  },
  { doc: 'HTTP server input settings.' },
);

export type HttpServerInputConfig = Infer<typeof config>;

export const httpServerInputSpec = defineComponent({
  name: 'http_server',
  kind: 'input',
  summary: 'Receives records over HTTP: POST a JSON array (or one object) with an API key; 202 once every record is durable at the output (or in the DLQ).',
  description: [
    '`POST <path>` with `Content-Type: application/json` and `X-API-Key`: a JSON array of records (each becomes one record value, numbers kept exact) or a single object. Answers: 202 `{"accepted": n}` once the flush holding the last of them committed; 400 (not JSON, an empty array), 401 (no or a wrong key), 413 (`max_body_bytes`, `max_records`), 429 with Retry-After (`max_pending` records already wait), 503 (not durable within `timeout`, or the pipeline stopped): send the same records again.',
    "It is an input of the pipeline rather than a front that writes to Kafka, because 202 then means the records are where the pipeline writes them; for a front to Kafka, use it with `output: kafka`. Records are on topic `http_server`, partition 0, with offsets counted from the start of the process (what `${topic}`, `${partition}` and `${first_offset}` render): an s3 output's keys are not deterministic across restarts, so a record sent again after a failed request can be written twice (at least once: give records an id). Dead letters go to stderr as JSON lines. `GET <path>` is not served; health and metrics are on the pipeline's `http` port.",
  ].join('\n\n'),
  config,
  example: ['http_server:', '  address: 0.0.0.0', '  port: 9470', '  api_keys: [${SLUICE_HTTP_INPUT_API_KEY}]', '  max_records: 1000', '  timeout: 30s'].join('\n'),
});

/** Records pushed by requests, pulled by the delivery loop. */
class PushSource implements RecordSource {
  private queue: ConsumedRecordInput[] = [];
  private waiting: (() => void) | undefined;
  private closed = false;

  push(records: ConsumedRecordInput[]): void {
    this.queue.push(...records);
    this.notify();
  }

  async next(max: number): Promise<ConsumedRecordInput[]> {
    while (this.queue.length === 0 && !this.closed) await new Promise<void>((r) => (this.waiting = r));
    return this.queue.splice(0, max);
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}

interface Waiter {
  /** The request is durable once the committed offset passes this. */
  until: bigint;
  resolve(): void;
  reject(error: Error): void;
}

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class HttpServerInput implements Input {
  readonly type = 'http_server';
  readonly offsets = 'none' as const;
  readonly finite = false;
  readonly decode = 'json' as const;
  readonly deadLetters: StreamDeadLetters;
  readonly describe: Record<string, unknown>;
  private readonly source = new PushSource();
  private readonly delivery: LocalDelivery;
  private readonly keys: ApiKeyCheck;
  private readonly app: FastifyInstance;
  private waiters: Waiter[] = [];
  private nextOffset = 0n;
  private committed = 0n;
  private failed: Error | undefined;
  /** The port it listens on once started (`port: 0` picks one). */
  port = 0;

  constructor(
    private readonly config: HttpServerInputConfig,
    private readonly ctx: InputContext,
  ) {
    this.deadLetters = new StreamDeadLetters(ctx.stderr ?? process.stderr);
    this.delivery = new LocalDelivery(this.source, { topic: 'http_server', logger: ctx.logger });
    this.delivery.ended.catch((error: Error) => this.fail(error));
    this.keys = new ApiKeyCheck(config.api_keys);
    this.describe = { address: config.address, port: config.port, path: config.path };
    this.app = this.buildApp();
  }

  get ended(): undefined {
    return undefined;
  }

  async connect(): Promise<void> {
    await this.app.listen({ host: this.config.address, port: this.config.port });
    const address = this.app.server.address();
    this.port = typeof address === 'object' && address ? address.port : this.config.port;
    this.ctx.logger.info({ address: this.config.address, port: this.port, path: this.config.path }, 'http_server input listening');
  }

  async run(handler: InputHandler): Promise<void> {
    this.delivery.start(handler);
  }

  async commit(_topic: string, _partition: number, next: bigint): Promise<void> {
    this.delivery.commit(next);
    if (next > this.committed) this.committed = next;
    const done = this.waiters.filter((w) => w.until <= this.committed);
    if (done.length > 0) {
      this.waiters = this.waiters.filter((w) => w.until > this.committed);
      for (const w of done) w.resolve();
    }
  }

  seek(_topic: string, _partition: number, offset: string): void {
    this.delivery.seek(offset);
  }

  async check(): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.app.server.listening) throw new Error('the http_server input is not listening');
  }

  async stop(): Promise<void> {
    this.fail(new Error('the pipeline is stopping'));
    await this.app.close();
    await this.delivery.stop();
  }

  private fail(error: Error): void {
    this.failed ??= error;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }

  private buildApp(): FastifyInstance {
    const app = Fastify({ logger: false, bodyLimit: this.config.max_body_bytes });
    refuseKeyInQuery(app, (message) => ({ error: 'key_in_query', message }));
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
      const status = error.statusCode ?? 500;
      if (status === 413) return reply.code(413).send({ error: 'payload_too_large', message: `the body is larger than ${this.config.max_body_bytes} bytes; split the batch` });
      if (status === 415) return reply.code(415).send({ error: 'unsupported_media_type', message: 'send Content-Type: application/json' });
      if (status < 500) return reply.code(status).send({ error: 'bad_request', message: error.message });
      this.ctx.logger.error({ err: error }, 'http_server input: request failed');
      return reply.code(500).send({ error: 'internal', message: 'internal error' });
    });
    app.post(this.config.path, async (request, reply) => {
      if (!this.keys.accepts(request.headers['x-api-key'])) return reply.code(401).send({ error: 'unauthorized', message: 'send a valid API key in the X-API-Key header' });
      if (this.failed) return reply.code(503).send({ error: 'unavailable', message: `the pipeline is not taking records: ${this.failed.message}` });
      let values: string[];
      try {
        values = this.recordsOf(request.body);
      } catch (error) {
        if (error instanceof BadRequest) return reply.code(error.status).send({ error: error.status === 413 ? 'payload_too_large' : 'bad_request', message: error.message });
        throw error;
      }
      if (this.delivery.holding + values.length > this.config.max_pending) {
        return reply.code(429).header('retry-after', '1').send({ error: 'busy', message: `${this.delivery.holding} records wait to become durable; send again shortly` });
      }
      const first = this.nextOffset;
      this.nextOffset += BigInt(values.length);
      const durable = new Promise<void>((resolve, reject) => this.waiters.push({ until: this.nextOffset, resolve, reject }));
      this.source.push(values.map((v, i) => ({ value: Buffer.from(v, 'utf8'), offset: first + BigInt(i) })));
      const outcome = await within(durable, this.config.timeout);
      if (!outcome.settled) return reply.code(503).header('retry-after', '1').send({ error: 'not_durable', message: `the records were not durable within ${this.config.timeout} ms; send them again` });
      if ('error' in outcome) return reply.code(503).send({ error: 'unavailable', message: `the records may not be durable: ${(outcome.error as Error).message}; send them again` });
      return reply.code(202).send({ accepted: values.length, first_offset: first.toString() });
    });
    return app;
  }

  /** The request's records as JSON texts (numbers exactly as sent). */
  private recordsOf(body: unknown): string[] {
    if (typeof body !== 'string' || body.trim() === '') throw new BadRequest(400, 'the body is empty; send a JSON array of records');
    let parsed: unknown;
    try {
      parsed = losslessParse(body);
    } catch (error) {
      throw new BadRequest(400, `not valid JSON: ${(error as Error).message}`);
    }
    const records = Array.isArray(parsed) ? parsed : [parsed];
    if (records.length === 0) throw new BadRequest(400, 'the array is empty; send at least one record');
    if (records.length > this.config.max_records) throw new BadRequest(413, `${records.length} records in one request, more than max_records ${this.config.max_records}; split the batch`);
    return records.map((r) => losslessStringify(r) ?? 'null');
  }
}

/** The http_server input component: its spec and its constructor. */
export const httpServerInput: InputComponent<HttpServerInputConfig> = {
  spec: httpServerInputSpec,
  create: (config, ctx) => new HttpServerInput(config, ctx),
};
