import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { dataBranches, defaultSchemasDir, loadContract } from '../../processors/normalizer/contract.js';
import { productOf, toEnvelope } from '../../processors/normalizer/envelope.js';
import type { ValidEvent } from '../../processors/normalizer/rules.js';

const contract = loadContract(defaultSchemasDir(), 'agent-event');
const type = avro.Type.forSchema(contract.schema as avro.Schema, { typeHook: exactLongHook });

const event = (overrides: Partial<ValidEvent> = {}): ValidEvent => ({
  eventId: '2eee8d33-81d9-402f-bc2f-a7f75dede2f8',
  eventType: 'deposit_made',
  agentId: 'agent-7',
  customerId: 'customer-9',
  amountMinor: 2n ** 53n + 3n,
  currency: 'USD',
  occurredAtMicros: 1_793_527_200_000_001,
  receivedAtMicros: 1_793_527_201_500_000,
  source: 'web',
  sessionId: 'session-1',
  correlationId: 'corr-1',
  metadata: '{"k": "v"}',
  ...overrides,
});

describe('the v1 contract as shipped', () => {
  it('is the highest version of schemas/agent-event, published as contract.yaml says', () => {
    expect(contract).toMatchObject({ version: 1, subject: 'sluice.agent-events-value', topic: 'sluice.agent-events', compatibility: 'BACKWARD_TRANSITIVE' });
    expect(contract.branches).toEqual({
      customer_onboarded: 'io.sluice.events.CustomerOnboarded',
      deposit_made: 'io.sluice.events.DepositMade',
      withdrawal_made: 'io.sluice.events.WithdrawalMade',
      investment_made: 'io.sluice.events.InvestmentMade',
    });
  });
});

describe('envelope mapping', () => {
  it('maps a deposit as v1.avsc documents it, and it encodes with the exact amount', () => {
    const envelope = toEnvelope(event(), contract);
    expect(envelope).toEqual({
      specversion: '1.0',
      id: '2eee8d33-81d9-402f-bc2f-a7f75dede2f8',
      type: 'io.sluice.agent.deposit_made',
      source: '/channels/web',
      time: 1_793_527_200_000_001,
      subject: 'agent-7',
      schema_version: 1,
      received_at: 1_793_527_201_500_000,
      correlation_id: 'corr-1',
      session_id: 'session-1',
      data: { 'io.sluice.events.DepositMade': { customer_id: 'customer-9', amount_minor: 9007199254740995n, currency: 'USD', metadata: '{"k": "v"}' } },
    });
    const decoded = type.fromBuffer(type.toBuffer(envelope)) as typeof envelope;
    expect(decoded.data['io.sluice.events.DepositMade']!.amount_minor).toBe(9007199254740995n);
    expect(decoded).toEqual(envelope);
  });

  it('maps a withdrawal', () => {
    const envelope = toEnvelope(event({ eventType: 'withdrawal_made', amountMinor: 500n }), contract);
    expect(envelope.type).toBe('io.sluice.agent.withdrawal_made');
    expect(envelope.data).toEqual({ 'io.sluice.events.WithdrawalMade': { customer_id: 'customer-9', amount_minor: 500n, currency: 'USD', metadata: '{"k": "v"}' } });
    expect(type.isValid(envelope)).toBe(true);
  });

  it('maps an investment with its product from metadata.product', () => {
    const envelope = toEnvelope(event({ eventType: 'investment_made', metadata: '{"product": "index-fund", "risk": 3}' }), contract);
    expect(envelope.type).toBe('io.sluice.agent.investment_made');
    expect(envelope.data).toEqual({
      'io.sluice.events.InvestmentMade': { customer_id: 'customer-9', amount_minor: 9007199254740995n, currency: 'USD', product: 'index-fund', metadata: '{"product": "index-fund", "risk": 3}' },
    });
    expect(type.isValid(envelope)).toBe(true);
    const noProduct = toEnvelope(event({ eventType: 'investment_made', metadata: null }), contract);
    expect(noProduct.data['io.sluice.events.InvestmentMade']).toMatchObject({ product: null, metadata: null });
  });

  it('maps a customer onboarding without money fields', () => {
    const envelope = toEnvelope(event({ eventType: 'customer_onboarded', amountMinor: null, currency: null, metadata: null, sessionId: null, correlationId: null }), contract);
    expect(envelope).toMatchObject({ type: 'io.sluice.agent.customer_onboarded', session_id: null, correlation_id: null });
    expect(envelope.data).toEqual({ 'io.sluice.events.CustomerOnboarded': { customer_id: 'customer-9', metadata: null } });
    expect(type.isValid(envelope)).toBe(true);
  });

  it('maps the channel into source, unknown when absent', () => {
    expect(toEnvelope(event({ source: 'agent_app' }), contract).source).toBe('/channels/agent_app');
    expect(toEnvelope(event({ source: null }), contract).source).toBe('/channels/unknown');
    expect(toEnvelope(event({ source: '' }), contract).source).toBe('/channels/unknown');
    expect(toEnvelope(event({ source: 'a b/c' }), contract).source).toBe('/channels/a%20b%2Fc');
  });

  it('writes the contract version into schema_version', () => {
    expect(toEnvelope(event(), { ...contract, version: 7 }).schema_version).toBe(7);
  });

  it('takes the product only when metadata is an object with a text product', () => {
    expect(productOf('{"product":"x"}')).toBe('x');
    expect(productOf('{"product":42}')).toBeNull();
    expect(productOf('["product"]')).toBeNull();
    expect(productOf('not json')).toBeNull();
    expect(productOf(null)).toBeNull();
  });
});

describe('contract folders', () => {
  const v1 = readFileSync(join(defaultSchemasDir(), 'agent-event', 'v1.avsc'), 'utf8');
  const folder = (files: Record<string, string>) => {
    const root = mkdtempSync(join(tmpdir(), 'sluice-contract-'));
    mkdirSync(join(root, 'agent-event'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(root, 'agent-event', name), text);
    return root;
  };
  const yaml = 'subject: s-value\ntopic: t\ncompatibility: BACKWARD\n';

  it('takes the highest vN (numerically) as the version written', () => {
    const v2 = JSON.parse(v1) as { fields: unknown[] };
    v2.fields.push({ name: 'tenant', type: ['null', 'string'], default: null });
    const files: Record<string, string> = { 'contract.yaml': yaml, 'v1.avsc': v1, 'notes.txt': 'x' };
    for (let n = 2; n <= 10; n++) files[`v${n}.avsc`] = JSON.stringify(v2);
    const c = loadContract(folder(files), 'agent-event');
    expect(c).toMatchObject({ version: 10, subject: 's-value', topic: 't', compatibility: 'BACKWARD' });
  });

  it('names what is missing', () => {
    expect(() => loadContract(folder({ 'contract.yaml': yaml }), 'agent-event')).toThrow(/v1\.avsc/);
    expect(() => loadContract(folder({ 'contract.yaml': 'topic: t\n', 'v1.avsc': v1 }), 'agent-event')).toThrow(/subject/);
    expect(() => loadContract(folder({ 'contract.yaml': yaml, 'v1.avsc': v1 }), 'other')).toThrow(/no such contract folder/);
  });

  it('refuses a version whose data union lacks an event type', () => {
    const broken = JSON.parse(v1) as { fields: { name: string; type: unknown[] }[] };
    const data = broken.fields.find((f) => f.name === 'data')!;
    data.type = data.type.slice(0, 3);
    expect(() => dataBranches(broken as never)).toThrow(/no InvestmentMade record for event type investment_made/);
  });
});
