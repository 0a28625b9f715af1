import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../support/build.js';
import { loadComposeFile, schemaErrors } from '../support/compose-file.js';

/**
 * docker-compose.yml through a Compose v2+ implementation (`docker compose config` needs no
 * engine), where one is installed (.ci/run builds Docker Compose v5.6.0 from the Go module
 * proxy; Debian bookworm only has v1). Without one the test validates against the
 * Compose Specification's JSON schema, and its name says so: it never skips.
 */

function composeV2(): { cmd: string[]; version: string } | undefined {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), 'version', '--short'], { encoding: 'utf8', timeout: 20_000 });
    const version = r.stdout?.trim() ?? '';
    // v1 (docker-compose 1.x, Python) predates the Compose Specification's current form.
    if (r.status === 0 && version && !/^1\./.test(version)) return { cmd, version };
  }
  return undefined;
}

const tool = composeV2();

describe('docker-compose.yml', () => {
  it(
    tool
      ? `passes \`${tool.cmd.join(' ')} config\` (Compose ${tool.version}, no engine needed)`
      : 'is valid against the Compose Specification JSON schema (no Compose v2+ tool installed here, so only the schema check runs)',
    () => {
      if (!tool) {
        console.log('docker-compose.yml: no Compose v2+ implementation found (docker compose / docker-compose); validated against the Compose Specification JSON schema only');
        expect(schemaErrors(loadComposeFile()).map((e) => `${e.instancePath} ${e.message}`)).toEqual([]);
        return;
      }
      const r = spawnSync(tool.cmd[0]!, [...tool.cmd.slice(1), '-f', 'docker-compose.yml', 'config', '--format', 'yaml'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const resolved = parse(r.stdout) as { services: Record<string, { image?: string; healthcheck?: unknown; environment?: Record<string, string> }>; volumes: Record<string, unknown> };
      const mine = loadComposeFile();
      // The tool reads the same topology the schema test checks: every service, image and health check.
      expect(Object.keys(resolved.services).sort()).toEqual(Object.keys(mine.services).filter((s) => !mine.services[s]!.profiles?.length).sort());
      for (const [name, s] of Object.entries(resolved.services)) {
        expect(s.image, name).toBe(mine.services[name]!.image);
        expect(Boolean(s.healthcheck), name).toBe(Boolean(mine.services[name]!.healthcheck));
      }
      // Merge keys and interpolation resolved as intended.
      expect(resolved.services.kafka!.environment!.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false');
      expect(resolved.services.normalizer!.environment!.SLUICE_S3_ENDPOINT).toBe('http://s3:9000');
      expect(resolved.services.normalizer!.environment!.AWS_SECRET_ACCESS_KEY).toBe('sluice-secret-key');
      expect(Object.keys(resolved.volumes).length).toBe(Object.keys(mine.volumes ?? {}).length);
    },
  );
});
