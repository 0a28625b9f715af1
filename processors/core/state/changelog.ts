import type { KafkaMessage, Message } from 'kafkajs';
import type { StateChange } from './partition-store.js';

/**
 * The changelog topic of a state store, as Kafka Streams keeps one: compacted, one
 * partition per input partition (a store's partition p lives in changelog partition p),
 * key = the state key, value = the entry or null (a tombstone). An entry is the 8-byte
 * big-endian expiry (ms since epoch; 2^53-1 = never) followed by the state value
 * (partition-store.ts encodeEntry), so a restored store expires its entries when the
 * original would, and restoring copies the bytes as they are.
 */

/** `<group>-<store>-changelog`, the Kafka Streams convention (`<application.id>-<store>-changelog`). */
export function changelogTopicName(groupId: string, store: string): string {
  return `${groupId}-${store}-changelog`;
}

/**
 * The configs of a changelog topic. Compaction keeps the last value of each key; tombstones
 * stay `delete.retention.ms` (1 day by default) so a store catching up sees them;
 * min.compaction.lag.ms keeps a fresh record uncompacted for an hour.
 */
export const CHANGELOG_CONFIGS: { name: string; value: string }[] = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'min.compaction.lag.ms', value: String(60 * 60 * 1000) },
  { name: 'segment.bytes', value: String(64 * 1024 * 1024) },
];

/**
 * How a store's changes are written to its changelog and read back. The default, one
 * record per change keyed by the state key (Kafka Streams' format), suits any store; a
 * store may pack its changes tighter (processors/normalizer/dedupe.ts writes a
 * transaction's new ids as a few records). Whatever the format, `decode` of the records
 * `encode` wrote, applied in order, must rebuild the same state: a codec that leaves
 * deletes out relies on the entries' expiry (restore drops expired entries) and on the
 * topic's retention to forget them.
 */
export interface ChangelogCodec {
  /** The changelog records of one transaction's changes, all for changelog partition `partition`. */
  encode(changes: readonly StateChange[], partition: number): Message[];
  /** The changes a changelog record carries, in order (none for a record that is no entry of this store). */
  decode(message: Pick<KafkaMessage, 'key' | 'value'>): StateChange[];
}

/** One record per change, key = the state key, value = the entry or null (a tombstone). */
export const PER_CHANGE_CODEC: ChangelogCodec = {
  encode: (changes, partition) => changes.map((c) => toChangelogMessage(c, partition)),
  decode: (message) => {
    const c = fromChangelogMessage(message);
    return c ? [c] : [];
  },
};

/** A state change as a changelog record for `partition`. */
export function toChangelogMessage(change: StateChange, partition: number): Message {
  return { key: change.key, value: change.entry, partition };
}

/** A changelog record read back as the change it carries; undefined for a record that is no entry (no key, or fewer than 8 bytes). */
export function fromChangelogMessage(message: Pick<KafkaMessage, 'key' | 'value'>): StateChange | undefined {
  if (!message.key) return undefined;
  if (message.value !== null && message.value.length < 8) return undefined;
  return { key: message.key.toString('utf8'), entry: message.value };
}
