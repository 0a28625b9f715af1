import { Writable } from 'node:stream';
import type { Admin } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ConfigError, isUnavailable, PermanentError, TransientError } from '../../processors/core/errors/errors.js';
import { TopicMissingError, waitForTopic } from '../../processors/core/kafka/topics.js';
import { createLogger } from '../../processors/core/log/logger.js';
import { endpointName, StartupState, StartupTimeoutError, waitForDependency } from '../../processors/core/runtime/startup.js';

/** A JSON logger whose lines the test reads back. */
function capturingLogger() {
  const lines: { level: string; msg: string; [k: string]: unknown }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ name: 'test', level: 'debug', destination }), lines };
}

const fast = { initialMs: 1, maxMs: 5 };
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { name: 'KafkaJSConnectionError' });

/** A kafkajs Admin that knows the topics of `topics()` (and throws what it returns when that is an Error). */
function fakeAdmin(topics: () => string[] | Error): Admin {
  return {
    listTopics: async () => {
      const t = topics();
      if (t instanceof Error) throw t;
      return t;
    },
  } as unknown as Admin;
}

describe('startup: a processor waits for what is not there yet', () => {
  it('classifies the failures worth waiting out', () => {
    // kafkajs gives up on a broker that is away with an error it marks non-retriable: a processor still waits.
    expect(isUnavailable(Object.assign(new Error('gave up'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false }))).toBe(true);
    expect(isUnavailable(refused())).toBe(true);
    expect(isUnavailable(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toBe(true);
    expect(isUnavailable(new TransientError('registry unreachable'))).toBe(true);
    expect(isUnavailable(Object.assign(new Error('SASL'), { name: 'KafkaJSSASLAuthenticationError' }))).toBe(false);
    expect(isUnavailable(Object.assign(new Error('denied'), { name: 'KafkaJSProtocolError', type: 'TOPIC_AUTHORIZATION_FAILED' }))).toBe(false);
    expect(isUnavailable(new PermanentError('incompatible schema'))).toBe(false);
    expect(isUnavailable(new TypeError('a bug'))).toBe(false);
  });

  it('retries until the dependency answers, naming it in a warning, then says it is available', async () => {
    const { logger, lines } = capturingLogger();
    let calls = 0;
    const value = await waitForDependency(
      'the schema registry at http://registry:8081/apis/ccompat/v7',
      async () => {
        if (++calls < 4) throw new TransientError('schema registry at http://registry:8081 is unreachable: fetch failed');
        return 42;
      },
      { logger, policy: fast, warnEveryMs: 60_000 },
    );
    expect(value).toBe(42);
    expect(calls).toBe(4);
    const warnings = lines.filter((l) => l.level === 'warn');
    // One warning (the first failure), the later attempts at debug until warnEveryMs passes.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toBe('waiting for the schema registry at http://registry:8081/apis/ccompat/v7');
    expect(warnings[0]!.reason).toContain('unreachable');
    expect(lines.filter((l) => l.level === 'debug' && l.msg.startsWith('waiting for'))).toHaveLength(2);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'the schema registry at http://registry:8081/apis/ccompat/v7 is available' });
  });

  it('warns again while the wait lasts', async () => {
    const { logger, lines } = capturingLogger();
    let calls = 0;
    await waitForDependency(
      'Kafka at b-1:9092',
      async () => {
        if (++calls < 6) throw refused();
      },
      { logger, policy: { initialMs: 10, maxMs: 10, multiplier: 1 }, warnEveryMs: 1 },
    );
    const warnings = lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warnings[0]).toBe('waiting for Kafka at b-1:9092');
    expect(warnings.slice(1).every((m) => m.startsWith('still waiting for Kafka at b-1:9092 after'))).toBe(true);
    expect(warnings.length).toBeGreaterThanOrEqual(2);
  });

  it('announces an attempt that gets no answer for a while (a client spending long on its own retries)', async () => {
    const { logger, lines } = capturingLogger();
    const value = await waitForDependency('Kafka at b-1:9092', () => new Promise((r) => setTimeout(() => r('connected'), 60)), { logger, slowMs: 10 });
    expect(value).toBe('connected');
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'waiting for Kafka at b-1:9092'],
      ['info', 'Kafka at b-1:9092 is available'],
    ]);
    expect(lines[0]!.reason).toBe('no answer within 0 s');
  });

  it('throws a permanent error at once, without waiting', async () => {
    const { logger } = capturingLogger();
    let calls = 0;
    const bad = new ConfigError([{ source: 'env SLUICE_X', setting: 'x', message: 'bad', fix: 'fix it' }]);
    await expect(
      waitForDependency('Kafka at b-1:9092', async () => {
        calls++;
        throw bad;
      }, { logger, policy: fast }),
    ).rejects.toBe(bad);
    expect(calls).toBe(1);
  });

  it('gives up after the startup timeout, naming the dependency and what to check', async () => {
    const { logger } = capturingLogger();
    const wait = waitForDependency('Kafka at b-1:9092', async () => { throw refused(); }, { logger, policy: fast, timeoutMs: 50, hint: 'check infra/local/stack status' });
    await expect(wait).rejects.toBeInstanceOf(StartupTimeoutError);
    await expect(wait).rejects.toThrow(/^Kafka at b-1:9092 did not become available within 0 s \(last error: connect ECONNREFUSED.*\); check infra\/local\/stack status$/);
  });

  it('stops waiting on shutdown', async () => {
    const { logger } = capturingLogger();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await expect(waitForDependency('Kafka at b-1:9092', async () => { throw refused(); }, { logger, policy: fast, signal: controller.signal })).rejects.toThrow('stopped while waiting for Kafka at b-1:9092');
  });

  it('is not ready until the processor says it consumes, and shows what it waits for meanwhile', async () => {
    const { logger } = capturingLogger();
    const startup = new StartupState({ logger, signal: new AbortController().signal, warnAfterMs: 60_000 });
    await expect(startup.check()).rejects.toThrow('starting');
    let up = false;
    const waiting = startup.dependency('Kafka at b-1:9092', async () => {
      if (!up) throw refused();
    });
    await new Promise((r) => setTimeout(r, 20));
    await expect(startup.check()).rejects.toThrow(/^waiting for Kafka at b-1:9092: connect ECONNREFUSED/);
    up = true;
    await waiting;
    // The dependency answered, but the processor does not consume yet: still not ready.
    await expect(startup.check()).rejects.toThrow();
    expect(startup.isReady).toBe(false);
    startup.ready();
    await expect(startup.check()).resolves.toBeUndefined();
  });

  it('names endpoints without credentials or query strings', () => {
    expect(endpointName('https://user:secret@registry.example.com:8081/apis/ccompat/v7?token=x')).toBe('https://registry.example.com:8081/apis/ccompat/v7');
    expect(endpointName('not a url')).toBe('(unparsable URL)');
  });
});

describe('waitForTopic: a topic another component creates', () => {
  it('says what it waits for and who creates it, warns naming what to check, and returns once it exists', async () => {
    const { logger, lines } = capturingLogger();
    let looks = 0;
    const seen: string[] = [];
    await waitForTopic(fakeAdmin(() => (++looks >= 5 ? ['sluice.staging.agent_events'] : [])), 'sluice.staging.agent_events', {
      logger,
      intervalMs: 5,
      warnAfterMs: 1,
      createdBy: 'the Debezium connector',
      hint: 'check sluice connectors status',
      onWaiting: (m) => seen.push(m),
    });
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'waiting for topic sluice.staging.agent_events (created by the Debezium connector)' });
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]!.msg).toMatch(/^topic sluice\.staging\.agent_events still missing after \d+ s \(created by the Debezium connector\); check sluice connectors status$/);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'topic sluice.staging.agent_events exists' });
    expect(seen[0]).toBe('waiting for topic sluice.staging.agent_events (created by the Debezium connector)');
  });

  it('waits out a broker that does not answer meanwhile', async () => {
    const { logger, lines } = capturingLogger();
    let looks = 0;
    await waitForTopic(fakeAdmin(() => (++looks < 3 ? refused() : ['t'])), 't', { logger, intervalMs: 5 });
    expect(looks).toBe(3);
    expect(lines[0]!.reason).toMatch(/^Kafka does not answer: connect ECONNREFUSED/);
  });

  it('with a timeout, fails naming the topic, its creator and the check', async () => {
    const wait = waitForTopic(fakeAdmin(() => []), 'sluice.staging.agent_events', { intervalMs: 5, timeoutMs: 30, createdBy: 'the Debezium connector', hint: 'check sluice connectors status' });
    await expect(wait).rejects.toBeInstanceOf(TopicMissingError);
    await expect(wait).rejects.toThrow(/^topic sluice\.staging\.agent_events did not appear within 0 s \(created by the Debezium connector\); check sluice connectors status$/);
  });

  it('a permanent answer (no permission to list topics) is thrown at once', async () => {
    const denied = Object.assign(new Error('not authorized'), { name: 'KafkaJSProtocolError', type: 'CLUSTER_AUTHORIZATION_FAILED' });
    await expect(waitForTopic(fakeAdmin(() => denied), 't', { intervalMs: 5 })).rejects.toBe(denied);
  });
});
