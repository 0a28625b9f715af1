import type { Logger } from '../../processors/core/log/logger.js';
import type { KeyIndex } from '../../processors/core/state/key-index.js';
import { StateStores } from '../../processors/core/state/state-stores.js';
import { applyEvents, type ApplyOptions, type ApplyResult } from '../../processors/live/aggregate.js';
import { LIVE_CHANGELOG_CODEC } from '../../processors/live/changelog.js';
import { CustomerIndex } from '../../processors/live/customers.js';
import type { LiveEvent } from '../../processors/live/event.js';
import type { FakeChangelog } from './fake-changelog.js';

/** Live's state stores as processors/live/live.ts opens them (SQLite, live's changelog codec, a customer index per partition), over a fake changelog. */
export function liveStores(dir: string, changelog: FakeChangelog, logger: Logger, o: { now?: () => number; index?: () => KeyIndex } = {}): StateStores {
  return new StateStores({ name: 'live', dir, engine: 'sqlite', changelogTopic: 'g-live-changelog', codec: LIVE_CHANGELOG_CODEC, source: changelog, logger, index: o.index ?? (() => new CustomerIndex()), ...(o.now ? { now: o.now } : {}) });
}

/** One Kafka transaction of live over partition 0: the events applied, the changes to the changelog, then to the local store. */
export function liveTransact(stores: StateStores, changelog: FakeChangelog, events: LiveEvent[], options: ApplyOptions): ApplyResult {
  const txn = stores.begin(0);
  const r = applyEvents(txn, events, options);
  stores.committed(txn, changelog.commit(0, txn.messages()));
  return r;
}
