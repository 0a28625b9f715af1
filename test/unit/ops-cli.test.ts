import { describe, expect, it } from 'vitest';
import { pruneCommand } from '../../processors/cli/commands/prune.js';

const helpOf = (cmd: ReturnType<typeof pruneCommand>): string => {
  let help = '';
  cmd.configureOutput({ writeOut: (s) => void (help += s) });
  cmd.outputHelp();
  return help;
};

describe('sluice prune --help', () => {
  it('shows the retention default as a duration (30d), not as milliseconds', () => {
    const help = helpOf(pruneCommand());
    expect(help).toMatch(/--retention <duration>[\s\S]*\(default: 30d\)/);
    expect(help).not.toContain('2592000000');
  });

  it('still parses the default and a given retention into milliseconds', async () => {
    const seen: number[] = [];
    for (const args of [[], ['--retention', '12h']]) {
      const cmd = pruneCommand();
      cmd.action((o: { retention: number }) => void seen.push(o.retention));
      await cmd.parseAsync(args, { from: 'user' });
    }
    expect(seen).toEqual([30 * 86_400_000, 12 * 3_600_000]);
  });
});
