import type { KafkaMessage, Message } from 'kafkajs';
import { PER_CHANGE_CODEC, type ChangelogCodec } from '../core/state/changelog.js';
import { encodeEntry, type StateChange } from '../core/state/partition-store.js';
import { legacyEventKey } from './aggregate.js';

/**
 * Live's changelog format (core/state's ChangelogCodec). Kafka Streams' one record per
 * key would write, beside each counted event, its event_id record, often an onboarded
 * customer's record and a new record of its agent-month's totals: two or three changelog
 * records an event, each framed, CRC'd and compressed by kafkajs in JavaScript. Instead
 * a transaction's changes of one month (all expire together: when the month leaves the
 * window) go as one packed record (more when it passes PACK_BYTES):
 *
 *   key   `live:<the first changed key>` (only a name: the topic is not compacted)
 *   value [8-byte expiry, ms since epoch, big-endian]
 *         then per change [u16 key length][key, UTF-8][u32 value length][value]
 *
 * Applied in order, the records rebuild the store: a later totals value of an agent-month
 * replaces the earlier one. Nothing is ever deleted but by expiry (live writes no other
 * deletes), so tombstones are not written: a restore drops entries whose expiry passed
 * (core/state), and the topic's retention (the window plus a month, topic-plan.ts)
 * deletes records once their month has closed. Records of the one-record-per-change
 * format are still read as PER_CHANGE_CODEC reads them.
 */
export const PACK_PREFIX = 'live:';
/** Bytes of changes in one packed record: well under max.message.bytes (1 MiB by default). */
export const PACK_BYTES = 512 * 1024;

export const LIVE_CHANGELOG_CODEC: ChangelogCodec = {
  encode(changes: readonly StateChange[], partition: number): Message[] {
    const byExpiry = new Map<string, { expiry: Buffer; items: { key: Buffer; value: Buffer }[]; bytes: number }>();
    for (const c of changes) {
      if (c.entry === null || c.entry.length < 8) continue; // deletes are expiries: see above
      const expiryKey = c.entry.toString('latin1', 0, 8);
      let group = byExpiry.get(expiryKey);
      if (!group) byExpiry.set(expiryKey, (group = { expiry: c.entry.subarray(0, 8), items: [], bytes: 0 }));
      const key = Buffer.from(c.key, 'utf8');
      const value = c.entry.subarray(8);
      group.items.push({ key, value });
      group.bytes += 6 + key.length + value.length;
    }
    const out: Message[] = [];
    for (const { expiry, items } of byExpiry.values()) {
      let at = 0;
      while (at < items.length) {
        let bytes = 8;
        let end = at;
        while (end < items.length && (end === at || bytes + 6 + items[end]!.key.length + items[end]!.value.length <= PACK_BYTES)) {
          bytes += 6 + items[end]!.key.length + items[end]!.value.length;
          end++;
        }
        const value = Buffer.allocUnsafe(bytes);
        expiry.copy(value, 0);
        let o = 8;
        for (let i = at; i < end; i++) {
          const { key, value: v } = items[i]!;
          value.writeUInt16BE(key.length, o);
          key.copy(value, o + 2);
          o += 2 + key.length;
          value.writeUInt32BE(v.length, o);
          v.copy(value, o + 4);
          o += 4 + v.length;
        }
        // The first key of a chunk (mostly a counted event's id): the topic is not compacted,
        // so the key only names the record.
        out.push({ key: PACK_PREFIX + items[at]!.key.toString('utf8'), value, partition });
        at = end;
      }
    }
    return out;
  },

  decode(message: Pick<KafkaMessage, 'key' | 'value'>): StateChange[] {
    if (!message.key) return [];
    const key = message.key.toString('utf8');
    if (!key.startsWith(PACK_PREFIX)) {
      // The one-record-per-change format kept event ids as `e\0<event_id>`: read as the packed format's legacy key (no occurred_at here).
      return PER_CHANGE_CODEC.decode(message).map((c) => (c.key.startsWith('e\u0000') && c.key.length === 38 ? { key: legacyEventKey(c.key.slice(2)), entry: c.entry } : c));
    }
    const v = message.value;
    if (!v || v.length < 8) return [];
    const expiresAt = Number(v.readBigUInt64BE(0));
    const out: StateChange[] = [];
    let emptyEntry: Buffer | undefined;
    let o = 8;
    while (o + 6 <= v.length) {
      const kl = v.readUInt16BE(o);
      if (o + 2 + kl + 4 > v.length) break;
      const k = v.toString('utf8', o + 2, o + 2 + kl);
      o += 2 + kl;
      const vl = v.readUInt32BE(o);
      o += 4;
      if (o + vl > v.length) break;
      // Event ids and customers carry no value: they share one entry buffer.
      const entry = vl === 0 ? (emptyEntry ??= encodeEntry(Buffer.alloc(0), expiresAt)) : encodeEntry(v.subarray(o, o + vl), expiresAt);
      out.push({ key: k, entry });
      o += vl;
    }
    return out;
  },
};
