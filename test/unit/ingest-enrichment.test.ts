import { describe, expect, it } from 'vitest';
import { isLosslessNumber } from 'lossless-json';
import { eventsOf, MalformedJsonError, parseJsonBody } from '../../processors/ingest-api/body.js';
import { customersToResolve, enrich, fingerprint, requestContext, resolveAgents, traceIdOf, type EnrichedEvent } from '../../processors/ingest-api/enrichment.js';
import type { ValidEvent } from '../../processors/ingest-api/validation.js';

const RECEIVED = new Date('2026-11-01T12:00:00.123Z');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

function event(overrides: Partial<ValidEvent> = {}): ValidEvent {
  return {
    eventId: '0b4e7f1c-2d9a-4f7e-9c1a-3b5d7e9f1a2c',
    eventType: 'deposit_made',
    agentId: null,
    customerId: 'customer-1',
    amountMinor: 9007199254740993n,
    currency: 'USD',
    occurredAt: '2026-11-01T10:00:00.000000Z',
    source: null,
    sessionId: null,
    correlationId: null,
    metadata: null,
    ...overrides,
  };
}

describe('request context', () => {
  it('stamps received_at from the server clock and reads the channel, session and correlation headers', () => {
    const { context, errors } = requestContext({ 'x-sluice-channel': 'mobile', 'x-session-id': 'sess-1', 'x-correlation-id': 'corr-1', traceparent: TRACEPARENT }, RECEIVED);
    expect(errors).toEqual([]);
    expect(context).toEqual({
      receivedAt: { micros: 1793534400123000n, iso: '2026-11-01T12:00:00.123000Z' },
      source: 'mobile',
      sessionId: 'sess-1',
      correlationId: 'corr-1',
    });
  });

  it('takes the trace id of a traceparent when there is no X-Correlation-Id', () => {
    expect(requestContext({ traceparent: TRACEPARENT }, RECEIVED).context.correlationId).toBe(TRACE_ID);
    expect(requestContext({}, RECEIVED).context).toMatchObject({ source: null, sessionId: null, correlationId: null });
  });

  it('refuses a bad channel or session header as a field error without an index', () => {
    const { errors } = requestContext({ 'x-sluice-channel': 'fax', 'x-session-id': ' padded' }, RECEIVED);
    expect(errors.map((e) => [e.index, e.field, e.code])).toEqual([
      [undefined, 'X-Sluice-Channel', 'invalid_value'],
      [undefined, 'X-Session-Id', 'invalid_value'],
    ]);
  });

  it('ignores an invalid traceparent, as W3C asks of receivers', () => {
    for (const bad of [
      'garbage',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `ff-${TRACE_ID}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-00f067aa0ba902b7-01-extra`,
      `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`,
    ]) {
      expect(traceIdOf(bad)).toBeNull();
    }
    // A later version may append fields.
    expect(traceIdOf(`01-${TRACE_ID}-00f067aa0ba902b7-01-extra`)).toBe(TRACE_ID);
  });
});

describe('enrichment', () => {
  const { context } = requestContext({ 'x-sluice-channel': 'web', 'x-session-id': 'hdr-session', 'x-correlation-id': 'hdr-corr' }, RECEIVED);

  it('fills what the event lacks from the request, and lets the event win', () => {
    expect(enrich(event(), 4, context)).toMatchObject({ index: 4, source: 'web', sessionId: 'hdr-session', correlationId: 'hdr-corr', receivedAt: '2026-11-01T12:00:00.123000Z' });
    expect(enrich(event({ source: 'backend', sessionId: 'own', correlationId: 'own-corr' }), 0, context)).toMatchObject({
      source: 'backend',
      sessionId: 'own',
      correlationId: 'own-corr',
    });
  });

  it('fingerprints the stored content, not the position', () => {
    const a = enrich(event(), 0, context);
    expect(fingerprint(a)).toBe(fingerprint(enrich(event(), 9, context)));
    expect(fingerprint(a)).not.toBe(fingerprint(enrich(event({ amountMinor: 9007199254740992n }), 0, context)));
  });
});

describe('agent resolution', () => {
  const { context } = requestContext({}, RECEIVED);
  const events: EnrichedEvent[] = [
    enrich(event({ customerId: 'assigned' }), 0, context),
    enrich(event({ customerId: 'explicit', agentId: 'agent-explicit' }), 1, context),
    enrich(event({ customerId: 'unassigned' }), 2, context),
    enrich(event({ customerId: 'assigned' }), 3, context),
  ];

  it('asks only for the customers of events without an agent, once each', () => {
    expect(customersToResolve(events)).toEqual(['assigned', 'unassigned']);
  });

  it("credits the customer's agent and refuses a customer without one, naming agent_id", () => {
    const { events: resolved, errors } = resolveAgents(events, new Map([['assigned', 'agent-7'], ['explicit', 'agent-other']]));
    expect(resolved.map((e) => [e.index, e.agentId])).toEqual([
      [0, 'agent-7'],
      [1, 'agent-explicit'],
      [3, 'agent-7'],
    ]);
    expect(errors).toEqual([{ index: 2, field: 'agent_id', code: 'unknown_customer', message: expect.stringContaining('"unassigned" has no assigned agent') }]);
  });
});

describe('request bodies', () => {
  it('keeps every number as the literal sent', () => {
    const body = parseJsonBody('{"amount_minor": 9007199254740993, "x": 1.00}') as Record<string, { value: string }>;
    expect(isLosslessNumber(body.amount_minor)).toBe(true);
    expect(body.amount_minor!.value).toBe('9007199254740993');
    expect(body.x!.value).toBe('1.00');
  });

  it('refuses malformed JSON, an empty body and ambiguous duplicate keys', () => {
    for (const text of ['{"a":', '', '  ', "{'a':1}", '{"a":1} trailing', '{"a":1,"a":2}']) {
      expect(() => parseJsonBody(text)).toThrow(MalformedJsonError);
    }
    // The same key twice with the same value says one thing.
    expect(parseJsonBody('{"a":1,"a":1}')).toBeTruthy();
  });

  it('takes one event object or a non-empty array of event objects', () => {
    expect(eventsOf(parseJsonBody('{"a":1}'))).toMatchObject({ batch: false, events: [{}] });
    expect(eventsOf(parseJsonBody('[{"a":1},{"b":2}]'))).toMatchObject({ batch: true, events: [{}, {}] });
    expect(eventsOf(parseJsonBody('[]'))).toEqual({ problem: expect.stringMatching(/empty/) });
    expect(eventsOf(parseJsonBody('[{"a":1}, 5]'))).toEqual({ problem: expect.stringMatching(/element 1 is a number/) });
    expect(eventsOf(parseJsonBody('"event"'))).toEqual({ problem: expect.stringMatching(/is a string/) });
    expect(eventsOf(parseJsonBody('null'))).toEqual({ problem: expect.stringMatching(/is null/) });
    expect(eventsOf(parseJsonBody('[[{"a":1}]]'))).toEqual({ problem: expect.stringMatching(/element 0 is an array/) });
  });
});
