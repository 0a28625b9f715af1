/**
 * core/runtime/v8-heap.ts and core/config/heap-settings.ts, the pure parts: which command
 * has limits, what the environment and the operator's flags say, and that the main thread's
 * parse and the settings' validation accept the same values.
 */
import { describe, expect, it } from 'vitest';
import { heapSettings } from '../../processors/core/config/heap-settings.js';
import { loadSettings } from '../../processors/core/config/settings.js';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { commandOf, heapLimitsFromEnv, operatorHeapFlags, ownHeapLimits, parseHeapMb, resourceLimitsOf } from '../../processors/core/runtime/v8-heap.js';
import { liveSettings } from '../../processors/live/settings.js';

describe('V8 heap limits of a processor', () => {
  it('finds the command behind the global options', () => {
    expect(commandOf(['-c', 'live', 'live'])).toBe('live');
    expect(commandOf(['--config', 'x.yaml', 'normalizer'])).toBe('normalizer');
    expect(commandOf(['--help'])).toBeUndefined();
  });

  it('applies to the processors that have limits of their own, not to their subcommands, and the environment overrides a default', async () => {
    expect(await ownHeapLimits(['live'], {})).toEqual({ maxOldSpaceMb: 128, maxSemiSpaceMb: 4 });
    expect(await ownHeapLimits(['-c', 'sluice.yaml', 'files'], {})).toEqual({ maxOldSpaceMb: 0, maxSemiSpaceMb: 0 }); // V8's: no worker
    expect(await ownHeapLimits(['files'], { SLUICE_FILES_MAX_SEMI_SPACE_MB: '8' })).toEqual({ maxOldSpaceMb: 0, maxSemiSpaceMb: 8 });
    expect(await ownHeapLimits(['live'], { SLUICE_LIVE_MAX_OLD_SPACE_MB: '' })).toEqual({ maxOldSpaceMb: 128, maxSemiSpaceMb: 4 });
    expect(await ownHeapLimits(['files', 'status', '--since', '1h'], {})).toBeUndefined();
    expect(await ownHeapLimits(['normalizer'], {})).toBeUndefined();
    expect(await ownHeapLimits(['--help'], {})).toBeUndefined();
  });

  it('a value that is not a limit is no limit in the main thread and an error of the settings, naming the variable and the fix', async () => {
    for (const bad of ['128m', '-1', '1e3', '0x40', '64.5', '2000000']) {
      expect(parseHeapMb(bad)).toBeUndefined();
      expect(await ownHeapLimits(['live'], { SLUICE_LIVE_MAX_OLD_SPACE_MB: bad })).toBeUndefined();
      let error: unknown;
      try {
        loadSettings(liveSettings, { env: { SLUICE_LIVE_MAX_OLD_SPACE_MB: bad } });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain('env SLUICE_LIVE_MAX_OLD_SPACE_MB');
      expect((error as ConfigError).message).toContain('set SLUICE_LIVE_MAX_OLD_SPACE_MB, e.g. SLUICE_LIVE_MAX_OLD_SPACE_MB=160');
    }
  });

  it('the main thread and the settings read a good value alike', () => {
    for (const [raw, mb] of [['0', 0], ['160', 160], [' 96 ', 96]] as const) {
      expect(heapLimitsFromEnv('SLUICE_X_', { maxOldSpaceMb: 1, maxSemiSpaceMb: 1 }, { SLUICE_X_MAX_OLD_SPACE_MB: raw })).toEqual({ maxOldSpaceMb: mb, maxSemiSpaceMb: 1 });
      expect(loadSettings({ x: heapSettings('x', { maxOldSpaceMb: 1, maxSemiSpaceMb: 1 }) }, { env: { SLUICE_X_MAX_OLD_SPACE_MB: raw } }).x).toEqual({ maxOldSpaceMb: mb, maxSemiSpaceMb: 1 });
    }
    expect(loadSettings(liveSettings, { env: {} }).live).toMatchObject({ maxOldSpaceMb: 128, maxSemiSpaceMb: 4 });
  });

  it("reads the operator's heap flags from the command line and NODE_OPTIONS, in V8's spellings", () => {
    expect(operatorHeapFlags([], '')).toEqual({});
    expect(operatorHeapFlags(['--max-old-space-size=512'], '--max_semi_space_size=4')).toEqual({ maxOldSpaceMb: 512, maxSemiSpaceMb: 4 });
    expect(operatorHeapFlags(['--enable-source-maps'], '--max-old-space-size=300 --max-old-space-size=400')).toEqual({ maxOldSpaceMb: 400 });
    expect(operatorHeapFlags(['--max-old-space-size=200'], '--max-old-space-size=300')).toEqual({ maxOldSpaceMb: 200 });
    expect(operatorHeapFlags(['--stack-size=2000'], '')).toEqual({});
  });

  it('turns the limits into worker resource limits: a young generation of three semi-spaces, a 0 left out', () => {
    expect(resourceLimitsOf({ maxOldSpaceMb: 128, maxSemiSpaceMb: 4 })).toEqual({ maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 12 });
    expect(resourceLimitsOf({ maxOldSpaceMb: 0, maxSemiSpaceMb: 2 })).toEqual({ maxYoungGenerationSizeMb: 6 });
    expect(resourceLimitsOf({ maxOldSpaceMb: 0, maxSemiSpaceMb: 0 })).toEqual({});
  });
});
