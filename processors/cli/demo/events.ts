import { createHash } from 'node:crypto';

/** One event as the ingest API takes it (docs/domain.md fields; amounts as decimal strings). */
export interface DemoEvent {
  event_id: string;
  event_type: 'customer_onboarded' | 'deposit_made' | 'withdrawal_made' | 'investment_made';
  agent_id?: string;
  customer_id: string;
  amount_minor?: string;
  currency?: string;
  occurred_at: string;
  metadata?: Record<string, unknown>;
}

/** A name-based UUID (v5 layout over SHA-1): the same seed always gives the same id. */
export function stableUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * A deterministic month of demo events for `agents` agents, each customer assigned to
 * one agent: onboardings first, then money movements. Deterministic ids make a second
 * run of the demo a no-op downstream (the ingest API answers `duplicate`).
 */
export function demoEvents(month: string, agents: number, perAgent: number): { events: DemoEvent[]; customers: Map<string, string> } {
  const customers = new Map<string, string>();
  const events: DemoEvent[] = [];
  const types = ['deposit_made', 'deposit_made', 'withdrawal_made', 'investment_made'] as const;
  for (let a = 1; a <= agents; a++) {
    const agent = `agent-${String(a).padStart(3, '0')}`;
    for (let i = 0; i < perAgent; i++) {
      const customer = `cust-${a}-${i % 5}`;
      customers.set(customer, agent);
      const day = String(1 + (i % 28)).padStart(2, '0');
      const occurred_at = `${month}-${day}T${String(8 + (i % 10)).padStart(2, '0')}:00:00Z`;
      const event_id = stableUuid(`sluice-demo/${month}/${agent}/${i}`);
      if (i < 5) {
        events.push({ event_id, event_type: 'customer_onboarded', customer_id: customer, occurred_at });
        continue;
      }
      const event_type = types[i % types.length]!;
      const amount = BigInt(10_000 + ((a * 7919 + i * 104_729) % 5_000_000));
      events.push({
        event_id,
        event_type,
        customer_id: customer,
        amount_minor: amount.toString(),
        currency: 'USD',
        occurred_at,
        ...(event_type === 'investment_made' ? { metadata: { product: i % 2 ? 'fund-a' : 'bond-b' } } : {}),
      });
    }
  }
  return { events, customers };
}
