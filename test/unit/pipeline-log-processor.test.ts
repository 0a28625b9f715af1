import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import type { ProcessorConfig } from '../../processors/core/pipeline/pipeline.js';
import { StepChain } from '../../processors/export/steps.js';

function capture(level = 'debug') {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  return { logger: createLogger({ name: 'export', level, destination: stream }), lines };
}

const flush = () => new Promise((r) => setImmediate(r));
const log = (config: Extract<ProcessorConfig, { type: 'log' }>['config']): ProcessorConfig => ({ type: 'log', label: 'peek', config });

describe('the log processor', () => {
  it('logs the whole record (bigints as text) at its level and passes it on unchanged', async () => {
    const { logger, lines } = capture();
    const steps = new StepChain([log({ level: 'info', message: undefined })], logger).forPartition();
    const record = { id: 'e-1', amount: 9007199254740993n };
    expect(await steps.run(record)).toEqual({ kind: 'keep', value: record });
    await flush();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', processor: 'peek', record: { id: 'e-1', amount: '9007199254740993' }, msg: 'record' });
  });

  it('logs the message expression, and a failing one is a warning while the record goes on', async () => {
    const { logger, lines } = capture();
    const steps = new StepChain([log({ level: 'warn', message: '{"who": id}' }), log({ level: 'info', message: '$error("boom")' })], logger).forPartition();
    expect(await steps.run({ id: 'e-2' })).toEqual({ kind: 'keep', value: { id: 'e-2' } });
    await flush();
    expect(lines.map((l) => [l.level, l.record ?? l.error])).toEqual([
      ['warn', { who: 'e-2' }],
      ['warn', 'D3137: boom (at 7)'],
    ]);
  });

  it('writes nothing below the logger level', async () => {
    const { logger, lines } = capture('info');
    const steps = new StepChain([log({ level: 'debug', message: undefined })], logger).forPartition();
    expect(await steps.run({ id: 'e-3' })).toEqual({ kind: 'keep', value: { id: 'e-3' } });
    await flush();
    expect(lines).toEqual([]);
  });
});
