import type { KafkaMessage, Message } from 'kafkajs';
import type { StateChange } from './partition-store.js';

/**
 * The changelog topic of a state store, as Kafka Streams keeps one: compacted, one
 * partition per input partition (a store's partition p lives in changelog partition p),
 * key = the state key, value = the state value or null (a tombstone). The entry's expiry
 * travels in a header, so a restored store expires its entries when the original would.
 */
export const EXPIRES_AT_HEADER = 'sluice.state.expires-at';

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

/** A state change as a changelog record for `partition`. */
export function toChangelogMessage(change: StateChange, partition: number): Message {
  return {
    key: change.key,
    value: change.value,
    partition,
    ...(change.value === null ? {} : { headers: { [EXPIRES_AT_HEADER]: String(change.expiresAt) } }),
  };
}

/** A changelog record read back as the change it carries. */
export function fromChangelogMessage(message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>): StateChange | undefined {
  if (!message.key) return undefined;
  const key = message.key.toString('utf8');
  if (message.value === null) return { key, value: null, expiresAt: 0 };
  const header = message.headers?.[EXPIRES_AT_HEADER];
  const text = Array.isArray(header) ? header[0] : header;
  const expiresAt = text === undefined ? Number.MAX_SAFE_INTEGER : Number(text.toString());
  return { key, value: message.value, expiresAt: Number.isSafeInteger(expiresAt) ? expiresAt : Number.MAX_SAFE_INTEGER };
}
