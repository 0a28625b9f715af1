import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((f) => f && existsSync(join(root, f)) && !f.endsWith('package-lock.json'));
const text = (f: string) => readFileSync(join(root, f), 'utf8');

describe('the repository stands alone', () => {
  it('no tracked file points to the folder beside the repository that users do not have', () => {
    const outside = ['..', 'shared'].join('/'); // spelled apart so this file does not match itself
    const offenders = tracked.filter((f) => !/\.(png|jpg|gz|parquet|jar)$/.test(f) && text(f).includes(outside));
    expect(offenders).toEqual([]);
  });

  it('docs/ holds the domain contract and the architecture, linked from the README', () => {
    for (const f of ['docs/domain.md', 'docs/architecture.md']) expect(tracked).toContain(f);
    const readme = text('README.md');
    expect(readme).toContain('(docs/domain.md)');
    expect(readme).toContain('(docs/architecture.md)');
    // The contract's rules a newcomer needs are in it, not elsewhere.
    const domain = text('docs/domain.md');
    for (const term of ['immutable_event_mutated', 'missing_field:<column>', 'half-to-even', 'commission_minor', 'agent_events']) expect(domain).toContain(term);
  });

  it('every relative link in the markdown files resolves to a file of the repository', () => {
    const broken: string[] = [];
    for (const f of tracked.filter((t) => t.endsWith('.md'))) {
      for (const m of text(f).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue; // http:, mailto:
        if (!existsSync(resolve(root, dirname(f), target))) broken.push(`${f}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
