import { coreSettings } from '../../config/core-settings.js';
import { envNameFor, type Setting } from '../../config/settings.js';

/**
 * The env var and default of one of the shared processor settings (core-settings.ts), so a
 * pipeline field such as `input.kafka.brokers` defaults exactly as every other Sluice
 * processor does (`SLUICE_KAFKA_BROKERS`, else `localhost:9092`), declared in one place.
 */
export function coreDefault<G extends keyof typeof coreSettings, K extends keyof (typeof coreSettings)[G] & string>(
  group: G,
  key: K,
): { env: string[]; default?: unknown; secret?: boolean } {
  const s = coreSettings[group][key] as unknown as Setting;
  return {
    env: [s.env ?? envNameFor([group, key])],
    ...(s.default !== undefined ? { default: s.default } : {}),
    ...(s.secret ? { secret: true } : {}),
  };
}
