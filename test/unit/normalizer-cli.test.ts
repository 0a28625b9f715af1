import { describe, expect, it } from 'vitest';
import { normalizerCommand } from '../../processors/cli/commands/normalizer.js';
import { loadSettings } from '../../processors/core/config/settings.js';
import { normalizerSettings } from '../../processors/normalizer/settings.js';

describe('sluice normalizer', () => {
  it('documents its settings in --help', () => {
    // outputHelp, unlike helpInformation, includes the text added after the usage.
    const cmd = normalizerCommand();
    let help = '';
    cmd.configureOutput({ writeOut: (s) => void (help += s) });
    cmd.outputHelp();
    expect(help).toContain('run the normalizer');
    for (const env of ['SLUICE_NORMALIZER_GROUP_ID', 'SLUICE_NORMALIZER_CDC_TOPIC', 'SLUICE_NORMALIZER_EVENTS_TOPIC', 'SLUICE_NORMALIZER_DLQ_TOPIC', 'SLUICE_NORMALIZER_BASE_CURRENCY', 'SLUICE_NORMALIZER_SCHEMAS_DIR', 'SLUICE_NORMALIZER_INSTANCE_ID', 'SLUICE_NORMALIZER_HTTP_PORT']) {
      expect(help).toContain(env);
    }
  });

  it('has the defaults of the brief and rejects a bad currency naming the env var', () => {
    const s = loadSettings(normalizerSettings, { env: {} }).normalizer;
    expect(s).toMatchObject({ groupId: 'sluice-normalizer', cdcTopic: 'sluice.staging.agent_events', eventsTopic: 'sluice.agent-events', dlqTopic: 'sluice.agent-events.dlq', baseCurrency: 'USD', contract: 'agent-event', httpPort: 9465, eventsPartitions: 6, dlqPartitions: 3 });
    expect(() => loadSettings(normalizerSettings, { env: { SLUICE_NORMALIZER_BASE_CURRENCY: 'usd' } })).toThrow(/SLUICE_NORMALIZER_BASE_CURRENCY/);
  });
});
