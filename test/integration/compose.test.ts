import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;

/** The compose tool: Docker's plugin when present, else the standalone docker-compose. */
async function composeTool(): Promise<string[]> {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    try {
      await run(cmd[0]!, [...cmd.slice(1), 'version'], { timeout: 20_000 });
      return cmd;
    } catch {
      /* try the next */
    }
  }
  throw new Error('no compose tool found: install one (apt-get install docker-compose) to validate docker-compose.yml');
}

describe('docker-compose.yml', () => {
  it('passes the compose tool validation (no engine needed)', async () => {
    const [cmd, ...pre] = await composeTool();
    const { stdout } = await run(cmd!, [...pre, '-f', 'docker-compose.yml', 'config'], { cwd: root, timeout: 60_000 });
    // The resolved config must hold the whole topology, each with a health check.
    for (const service of ['postgres', 'kafka', 'registry', 'connect', 's3', 'migrate']) {
      expect(stdout).toMatch(new RegExp(`^  ${service}:`, 'm'));
    }
    expect(stdout.match(/healthcheck:/g)?.length ?? 0).toBeGreaterThanOrEqual(5);
  });
});
