// Deterministic generator of docs/domain.md-shaped flattened lake rows, as the export
// pipeline would see them after Avro decoding (codec.ts): longs are numbers when safe
// and bigint beyond 2^53; timestamps are numbers of microseconds since the epoch (UTC).

export const COLUMNS = [
  // name, kind, nullable
  ['event_id', 'string', false],
  ['event_type', 'string', false],
  ['agent_id', 'string', false],
  ['customer_id', 'string', false],
  ['amount_minor', 'int64', true],
  ['currency', 'string', true],
  ['occurred_at', 'timestamp_us', false],
  ['received_at', 'timestamp_us', false],
  ['source', 'string', true],
  ['session_id', 'string', true],
  ['correlation_id', 'string', true],
  ['product', 'string', true],
  ['metadata', 'string', true],
  ['schema_version', 'int32', false],
  ['kafka_topic', 'string', false],
  ['kafka_partition', 'int32', false],
  ['kafka_offset', 'int64', false],
];

const TYPES = ['customer_onboarded', 'customer_onboarded', 'deposit_made', 'deposit_made', 'deposit_made', 'deposit_made',
  'withdrawal_made', 'withdrawal_made', 'investment_made', 'investment_made'];
const SOURCES = ['web', 'mobile', 'agent_app', 'backend', null];
const PRODUCTS = ['fund-a', 'bond-b', 'etf-ç', null];
export const UTF8_METADATA = '{"note":"café ✓ 日本語 🚀","channel":"agent_app"}';
export const BIG_AMOUNT = 9007199254740993n; // 2^53 + 1
export const HUGE_AMOUNT = 4611686018427387907n; // 2^62 + 3
export const BASE_US = 1767225600000000; // 2026-01-01T00:00:00Z in µs

function mix(x) {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}
function hex8(x) { return x.toString(16).padStart(8, '0'); }
function uuid(i, salt) {
  const a = mix(i * 4 + salt), b = mix(a + 1), c = mix(b + 2), d = mix(c + 3);
  const bh = hex8(b), ch = hex8(c), dh = hex8(d);
  return `${hex8(a)}-${bh.slice(0, 4)}-4${bh.slice(5, 8)}-8${ch.slice(1, 4)}-${ch.slice(4)}${dh}`;
}

/** Row i (0-based). Row objects are fresh each call, like decoded Kafka records. */
export function row(i) {
  const m = mix(i + 0x9e3779b9);
  const type = TYPES[i % 10];
  const money = type !== 'customer_onboarded';
  let amount = null;
  if (money) {
    if (i % 100000 === 7) amount = BIG_AMOUNT;
    else if (i % 100000 === 17) amount = HUGE_AMOUNT;
    else amount = 100 + (m % 5000000);
  }
  const occurred = BASE_US + i * 1000003 + (m % 1000);
  return {
    event_id: uuid(i, 1),
    event_type: type,
    agent_id: 'agent-' + String(m % 2000).padStart(5, '0'),
    customer_id: 'cust-' + String((m >>> 3) % 200000).padStart(7, '0'),
    amount_minor: amount,
    currency: money ? 'USD' : null,
    occurred_at: occurred,
    received_at: occurred + 1500 + (m % 100000),
    source: SOURCES[i % 5],
    session_id: i % 3 === 0 ? null : 'sess-' + hex8(mix(i * 7)),
    correlation_id: i % 4 === 0 ? null : uuid(i, 2),
    product: type === 'investment_made' ? PRODUCTS[(i >>> 1) % 4] : null,
    metadata: i % 7 === 0 ? UTF8_METADATA : i % 2 === 1 ? null : '{"channel":"web","n":' + i + '}',
    schema_version: i % 11 === 0 ? 2 : 1,
    kafka_topic: 'sluice.events.v1',
    kafka_partition: i % 6,
    kafka_offset: 10_000_000_000 + Math.floor(i / 6),
  };
}

/** Exact expected aggregates for n rows (BigInt sums), used by the verifier. */
export function expected(n) {
  const e = { count: n, nonNull: {}, sums: { amount_minor: 0n, occurred_at: 0n, received_at: 0n, kafka_offset: 0n, kafka_partition: 0n, schema_version: 0n },
    utf8Bytes: { metadata: 0n, product: 0n }, bigRowId: null, hugeRowId: null, utf8RowId: null };
  for (const [name] of COLUMNS) e.nonNull[name] = 0;
  for (let i = 0; i < n; i++) {
    const r = row(i);
    for (const [name] of COLUMNS) if (r[name] !== null) e.nonNull[name]++;
    for (const k of Object.keys(e.sums)) if (r[k] !== null) e.sums[k] += BigInt(r[k]);
    for (const k of Object.keys(e.utf8Bytes)) if (r[k] !== null) e.utf8Bytes[k] += BigInt(Buffer.byteLength(r[k]));
    if (e.bigRowId === null && r.amount_minor === BIG_AMOUNT) e.bigRowId = r.event_id;
    if (e.hugeRowId === null && r.amount_minor === HUGE_AMOUNT) e.hugeRowId = r.event_id;
    if (e.utf8RowId === null && r.metadata === UTF8_METADATA) e.utf8RowId = r.event_id;
  }
  return e;
}
