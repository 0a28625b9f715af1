import type { KafkaMessage, Message } from 'kafkajs';
import { PER_CHANGE_CODEC, type ChangelogCodec } from '../core/state/changelog.js';
import { entryExpiresAt, type StateChange } from '../core/state/partition-store.js';
import type { StateTransaction } from '../core/state/state-stores.js';

/**
 * Durable dedupe by event_id. Debezium is at least once (a Connect crash re-sends what
 * it had not flushed, a re-snapshot re-reads every row), so the same row may reach the
 * normalizer again; the CDC topic is keyed by event_id, so every copy of an event lands
 * in the same partition, and that partition's state (core/state, written in the same
 * transaction as the events) says whether the event was already emitted.
 *
 * The rules:
 *   - an event_id is remembered from the transaction that emitted it until `windowMs`
 *     after that (processing time), then forgotten (a tombstone in the changelog), so
 *     the state is bounded by the events of one window;
 *   - an INSERT or snapshot read of a remembered event_id is a duplicate: not emitted,
 *     counted by kind (insert, snapshot);
 *   - a copy arriving after its id was forgotten cannot be told from a new event, except
 *     by age: an event not remembered whose received_at (set once, when the row entered
 *     staging, and carried by every copy) is older than the window is counted as
 *     `beyondWindow` and emitted. Its first copy, if there was one, was emitted at least
 *     a window ago; `sluice compact` removes such copies from the lake. With the window
 *     longer than the staging retention a re-snapshot never produces one.
 */
export interface DedupeOptions {
  windowMs: number;
}

export type CopyKind = 'insert' | 'snapshot';

/** Nothing but the id and its expiry is needed: the entry's value is empty. */
const SEEN = Buffer.alloc(0);

/**
 * The state key of an event_id. The contract's event_id is a UUID (Postgres prints it in
 * its canonical lower-case form): its 16 bytes as base64url, 22 characters instead of 36
 * (a smaller LMDB B-tree, cheaper map keys), and 16 bytes in the changelog. Any other
 * text (not expected) is kept as it is behind a `~`, which base64url never holds.
 */
export function dedupeKey(eventId: string): string {
  // Plain JavaScript on purpose: this runs for every event, and five Buffer calls cost ~10x more.
  if (eventId.length !== 36) return `~${eventId}`;
  let n = 0;
  for (let i = 0; i < 36; i++) {
    const c = eventId.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d) return `~${eventId}`;
      continue;
    }
    const v = c < 128 ? HEX[c]! : -1;
    if (v < 0) return `~${eventId}`;
    if (n % 2 === 0) BYTES[n >> 1] = v << 4;
    else BYTES[n >> 1]! |= v;
    n++;
  }
  for (let i = 0, o = 0; i < 15; i += 3) {
    const t = (BYTES[i]! << 16) | (BYTES[i + 1]! << 8) | BYTES[i + 2]!;
    CODES[o++] = B64[t >> 18]!;
    CODES[o++] = B64[(t >> 12) & 63]!;
    CODES[o++] = B64[(t >> 6) & 63]!;
    CODES[o++] = B64[t & 63]!;
  }
  CODES[20] = B64[BYTES[15]! >> 2]!;
  CODES[21] = B64[(BYTES[15]! & 3) << 4]!;
  return String.fromCharCode.apply(null, CODES as unknown as number[]);
}

/** Lower-case hex digits' values (-1: not one; Postgres prints UUIDs in lower case). */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX[0x61 + i] = 10 + i;
const B64 = Uint8Array.from(Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'));
const BYTES = new Uint8Array(16);
const CODES = new Uint16Array(22);

/** The event_id a state key stands for (for logs and tests). */
export function eventIdOf(key: string): string {
  if (key.startsWith('~')) return key.slice(1);
  const h = Buffer.from(key, 'base64url').toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const isPackable = (key: string) => key.length === 22 && key.charCodeAt(0) !== 0x7e; // not `~`

/** Whether the event_id (its `dedupeKey`) was already emitted within the window (this transaction's own events included). */
export function isDuplicate(state: StateTransaction, key: string): boolean {
  return state.has(key);
}

/**
 * Remembers an event (its `dedupeKey`) being emitted in this transaction; says whether it
 * is older than the window (a possible copy of one the state has forgotten).
 */
export function remember(state: StateTransaction, key: string, receivedAtMicros: number, now: number, options: DedupeOptions): 'new' | 'beyond-window' {
  state.put(key, SEEN, now + options.windowMs);
  return receivedAtMicros / 1000 < now - options.windowMs ? 'beyond-window' : 'new';
}

/** Removes ids whose window has passed (a bounded sweep step, now and then) in this transaction. */
export function expireWindow(state: StateTransaction, now: number): number {
  return state.expireDue(now);
}

export const copyKind = (op: 'c' | 'r' | 'u' | 'd'): CopyKind => (op === 'r' ? 'snapshot' : 'insert');

/** Key prefix of a packed changelog record (a UUID event_id, the one-id format's key, never starts so). */
const PACK_PREFIX = 'ids:';
/** Ids per packed record: 8192 x 16 bytes = 128 KiB, well under max.message.bytes (1 MiB). */
export const IDS_PER_RECORD = 8192;

/**
 * The dedupe's changelog format. Kafka Streams' one record per key would put one
 * changelog record beside every event the normalizer emits (the records a transaction
 * writes double, and kafkajs encodes each in JavaScript): instead the ids a transaction
 * remembers, which all share one expiry (the transaction's time + the window), go as a
 * few packed records: key `ids:<first id>` (unique: an id is remembered once), value
 * [8-byte expiry][16-byte id]... (at most IDS_PER_RECORD ids each).
 *
 * Forgetting writes nothing: an id is only ever deleted when its window passed, a restore
 * drops entries whose expiry passed (core/state), and the topic's retention (the window
 * plus a day, topic-plan.ts) deletes the records once every id in them has expired.
 * Ids that are no UUID (not expected), and records of the one-id-per-record format (key
 * the event_id, value the entry, or a tombstone), are read and written as PER_CHANGE_CODEC
 * does, with the event_id as key.
 */
export const DEDUPE_CHANGELOG_CODEC: ChangelogCodec = {
  encode(changes: readonly StateChange[], partition: number): Message[] {
    const out: Message[] = [];
    const byExpiry = new Map<number, { entry: Buffer; keys: string[] }>();
    for (const c of changes) {
      if (c.entry === null) continue; // forgotten by expiry: see above
      if (isPackable(c.key) && c.entry.length === 8) {
        const expiresAt = entryExpiresAt(c.entry);
        let group = byExpiry.get(expiresAt);
        if (!group) byExpiry.set(expiresAt, (group = { entry: c.entry, keys: [] }));
        group.keys.push(c.key);
      } else {
        out.push(...PER_CHANGE_CODEC.encode([{ key: eventIdOf(c.key), entry: c.entry }], partition));
      }
    }
    for (const { entry, keys } of byExpiry.values()) {
      for (let i = 0; i < keys.length; i += IDS_PER_RECORD) {
        const part = keys.slice(i, i + IDS_PER_RECORD);
        const value = Buffer.allocUnsafe(8 + 16 * part.length);
        entry.copy(value, 0, 0, 8);
        for (let j = 0; j < part.length; j++) value.write(part[j]!, 8 + 16 * j, 16, 'base64url');
        out.push({ key: PACK_PREFIX + part[0], value, partition });
      }
    }
    return out;
  },

  decode(message: Pick<KafkaMessage, 'key' | 'value'>): StateChange[] {
    if (!message.key) return [];
    const key = message.key.toString('latin1');
    if (!key.startsWith(PACK_PREFIX)) return PER_CHANGE_CODEC.decode(message).map((c) => ({ key: dedupeKey(c.key), entry: c.entry }));
    const value = message.value;
    if (!value || value.length < 8 || (value.length - 8) % 16 !== 0) return [];
    const entry = Buffer.from(value.subarray(0, 8));
    const out: StateChange[] = [];
    for (let at = 8; at < value.length; at += 16) out.push({ key: value.toString('base64url', at, at + 16), entry });
    return out;
  },
};
