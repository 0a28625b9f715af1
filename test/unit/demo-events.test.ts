import { describe, expect, it } from 'vitest';
import { demoEvents, stableUuid } from '../../processors/cli/demo/events.js';
import { validateEvent } from '../../processors/ingest-api/validation.js';

describe('demo events', () => {
  it('are deterministic, so a second demo run adds nothing', () => {
    expect(stableUuid('a')).toBe(stableUuid('a'));
    expect(stableUuid('a')).not.toBe(stableUuid('b'));
    expect(stableUuid('a')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(demoEvents('2026-10', 3, 20).events).toEqual(demoEvents('2026-10', 3, 20).events);
  });

  it('cover every event type, with unique ids, inside the month, each customer with one agent', () => {
    const { events, customers } = demoEvents('2026-10', 4, 30);
    expect(events).toHaveLength(120);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(120);
    expect(new Set(events.map((e) => e.event_type))).toEqual(new Set(['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made']));
    expect(events.every((e) => e.occurred_at.startsWith('2026-10-'))).toBe(true);
    expect(customers.size).toBe(20);
  });
});

describe('demo events against the ingest API rules', () => {
  it('are all valid events the API accepts', () => {
    const { events } = demoEvents('2026-10', 2, 20);
    const options = { baseCurrency: 'USD', receivedAtMicros: BigInt(Date.UTC(2026, 10, 1)) * 1000n };
    for (const [i, e] of events.entries()) {
      const verdict = validateEvent(e as unknown as Record<string, unknown>, i, options);
      expect(verdict, JSON.stringify(e)).toMatchObject({ ok: true });
    }
  });
});
