import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { coreSettings } from '../../processors/core/config/core-settings.js';
import { envNameFor, type Setting, type SettingsSpec } from '../../processors/core/config/settings.js';
import { ingestApiSettings } from '../../processors/ingest-api/settings.js';
import { liveSettings } from '../../processors/live/settings.js';
import { filesSettings } from '../../processors/files/settings.js';
import { normalizerSettings } from '../../processors/normalizer/settings.js';
import { connectorMonitorSettings } from '../../processors/ops/connector-monitor.js';
import { reportsSettings } from '../../processors/reports/settings.js';
import { ROOT } from '../support/build.js';
import { healthcheckBinary, loadComposeFile, schemaErrors, type ComposeService } from '../support/compose-file.js';

/**
 * docker-compose.yml checked on every machine, without a compose tool: the Compose
 * Specification's JSON schema (vendored, infra/compose/schema), then what the project
 * promises of it. The compose tool's own check is test/integration/compose.test.ts.
 */

const compose = loadComposeFile();
const services = Object.entries(compose.services);
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/**
 * What each image ships that a health check may run, as read in the image's own Dockerfile
 * (no curl where the image lacks it):
 * - postgres (docker-library, Debian): the PostgreSQL client binaries, pg_isready among them;
 * - apache/kafka (docker/jvm/Dockerfile, Alpine JRE): bash and /opt/kafka/bin; wget is removed, curl never added;
 * - apicurio/apicurio-registry (ubi10/openjdk-21-runtime): curl, as Apicurio's own compose examples use;
 * - quay.io/debezium/connect (fedora-minimal base, whose curl the Debezium Dockerfiles use): curl;
 * - quay.io/minio/minio (ubi-micro since 2023, no curl from then to 2025-09; mc copied in): mc;
 * - sluice:local (this repository's Dockerfile, node bookworm-slim: no curl, no wget): node;
 * - prom/prometheus (busybox base): wget;
 * - grafana/grafana (Alpine, `apk add ... curl`): curl.
 */
const HEALTHCHECK_BINARIES: [RegExp, string[]][] = [
  [/^postgres:/, ['pg_isready']],
  [/^apache\/kafka:/, ['/opt/kafka/bin/kafka-broker-api-versions.sh', '/opt/kafka/bin/kafka-topics.sh', '/opt/kafka/bin/kafka-cluster.sh']],
  [/^apicurio\/apicurio-registry:/, ['curl']],
  [/^quay\.io\/debezium\/connect:/, ['curl']],
  [/^quay\.io\/minio\/minio:/, ['mc']],
  [/^sluice:local$/, ['node']],
  [/^prom\/prometheus:/, ['wget', 'promtool']],
  [/^grafana\/grafana:/, ['curl', 'wget']],
];

/** A pinned tag names one release: a full version (x.y.z...) or MinIO's dated RELEASE tag. */
const PINNED_TAG = /^(v?\d+\.\d+\.\d+([.-][A-Za-z0-9.]+)*|RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)$/;
/** PostgreSQL numbers its releases major.minor: 15.18 is one release, 15 is not. */
const PINNED_POSTGRES_TAG = /^\d+\.\d+(-[a-z]+)?$/;

function tagOf(image: string): string {
  const last = image.split('/').pop()!;
  return last.includes(':') ? last.slice(last.indexOf(':') + 1) : '';
}

/** Services that run once and exit (others wait for them with service_completed_successfully), or CLI-only ones. */
const oneShots = new Set(
  services.flatMap(([, s]) => Object.entries(s.depends_on ?? {}).filter(([, d]) => d.condition === 'service_completed_successfully').map(([name]) => name)),
);
const longRunning = services.filter(([name, s]) => !oneShots.has(name) && !(s.profiles ?? []).includes('cli'));
const sluiceServices = services.filter(([, s]) => s.image === 'sluice:local');

function envNames(spec: SettingsSpec, prefix: string[] = []): string[] {
  return Object.entries(spec).flatMap(([key, value]) => {
    const path = [...prefix, key];
    return typeof (value as Setting).doc === 'string' ? [(value as Setting).env ?? envNameFor(path)] : envNames(value as SettingsSpec, path);
  });
}

function volumeTargets(s: ComposeService): Map<string, string> {
  return new Map(
    (s.volumes ?? []).map((v) => {
      if (typeof v !== 'string') return [v.target, v.source ?? ''];
      const [source, target] = v.split(':');
      return [target!, source!];
    }),
  );
}

function pomVersion(pom: string, property: string): string {
  return new RegExp(`<${property}>([^<]+)</${property}>`).exec(read(pom))![1]!;
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification JSON schema (compose-go v2.16.1, vendored)', () => {
    expect(schemaErrors(compose).map((e) => `${e.instancePath} ${e.message}`)).toEqual([]);
    // The check can fail: a misspelt key is refused.
    const broken = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    broken.services.kafka!.helthcheck = { test: ['CMD', 'true'] };
    expect(schemaErrors(broken).length).toBeGreaterThan(0);
  });

  it('pins every image to one release', () => {
    for (const [name, s] of services) {
      expect(s.image, `service ${name} has no image`).toBeTruthy();
      if (s.image === 'sluice:local') {
        expect(s.build, `service ${name} builds sluice:local`).toBeDefined();
        continue;
      }
      expect(tagOf(s.image!), `service ${name}: ${s.image} is not pinned to a release`).toMatch(s.image!.startsWith('postgres:') ? PINNED_POSTGRES_TAG : PINNED_TAG);
    }
    // The Dockerfile's base images too.
    for (const [, image] of read('Dockerfile').matchAll(/^FROM\s+(\S+)/gm)) expect(tagOf(image!), `Dockerfile FROM ${image}`).toMatch(/^\d+\.\d+\.\d+-[a-z]+(-slim)?$/);
  });

  it('runs the versions of the local stack', () => {
    const image = (name: string) => compose.services[name]!.image!;
    expect(image('kafka')).toBe(`apache/kafka:${pomVersion('infra/local/maven/kafka/pom.xml', 'kafka.version')}`);
    expect(image('connect')).toBe(`quay.io/debezium/connect:${pomVersion('infra/local/maven/debezium-postgres/pom.xml', 'debezium.version')}`);
    expect(image('registry')).toBe(`apicurio/apicurio-registry:${/^APICURIO_VERSION=(\S+)/m.exec(read('infra/local/components/registry.sh'))![1]}`);
    // Debian bookworm's PostgreSQL, which the local stack and CI install, is 15.
    expect(image('postgres')).toMatch(/^postgres:15\.\d+-bookworm$/);
    expect(image('migrate')).toBe(image('postgres'));
  });

  it('gives every long-running service a health check that runs a program its image ships', () => {
    expect(longRunning.length).toBeGreaterThanOrEqual(12);
    for (const [name, s] of longRunning) {
      expect(s.healthcheck?.test, `service ${name} has no health check`).toBeDefined();
      const allowed = HEALTHCHECK_BINARIES.find(([re]) => re.test(s.image!))?.[1];
      expect(allowed, `no record of what ${s.image} ships: read its Dockerfile and add it to HEALTHCHECK_BINARIES`).toBeDefined();
      expect(allowed, `service ${name}: ${s.image} does not ship ${healthcheckBinary(s.healthcheck!.test)}`).toContain(healthcheckBinary(s.healthcheck!.test));
    }
    expect(healthcheckBinary(compose.services.s3!.healthcheck!.test)).toBe('mc');
    expect(compose.services.s3!.healthcheck!.test).toEqual(['CMD', 'mc', 'ready', 'local']);
  });

  it('runs the broker as MSK does: no auto-created topics, data on the volume', () => {
    const kafka = compose.services.kafka!;
    expect(String(kafka.environment!.KAFKA_AUTO_CREATE_TOPICS_ENABLE)).toBe('false');
    const logDirs = String(kafka.environment!.KAFKA_LOG_DIRS);
    const source = volumeTargets(kafka).get(logDirs);
    expect(source, `KAFKA_LOG_DIRS ${logDirs} is not a mounted volume`).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(source);
  });

  it('keeps every server\'s data on a named volume', () => {
    const dataDirs: Record<string, string> = { postgres: '/var/lib/postgresql/data', kafka: '/var/lib/kafka/data', s3: '/data', prometheus: '/prometheus', grafana: '/var/lib/grafana' };
    for (const [name, dir] of Object.entries(dataDirs)) {
      const source = volumeTargets(compose.services[name]!).get(dir);
      expect(Object.keys(compose.volumes ?? {}), `${name}: ${dir} on a named volume`).toContain(source);
    }
  });

  it('applies the topic plan before any processor that uses Kafka starts', () => {
    expect(compose.services.topics!.command).toEqual(['topics', 'apply']);
    expect(compose.services.topics!.depends_on?.kafka?.condition).toBe('service_healthy');
    for (const name of ['connectors', 'normalizer', 'export', 'reports', 'files']) {
      expect(compose.services[name]!.depends_on?.topics?.condition, `${name} waits for the topic plan`).toBe('service_completed_successfully');
    }
  });

  it('sets every endpoint and credential of the Sluice services explicitly, under names the settings know', () => {
    const required = ['SLUICE_KAFKA_BROKERS', 'SLUICE_SCHEMA_REGISTRY_URL', 'SLUICE_DATABASE_URL', 'SLUICE_CONNECT_URL', 'SLUICE_S3_ENDPOINT', 'SLUICE_S3_FORCE_PATH_STYLE', 'SLUICE_S3_BUCKET', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
    const known = new Set([coreSettings, normalizerSettings, reportsSettings, ingestApiSettings, connectorMonitorSettings, liveSettings, filesSettings].flatMap((spec) => envNames(spec as SettingsSpec)));
    expect(sluiceServices.length).toBeGreaterThanOrEqual(7);
    for (const [name, s] of sluiceServices) {
      for (const env of required) expect(s.environment?.[env], `${name}: ${env}`).toBeTruthy();
      for (const env of Object.keys(s.environment ?? {}).filter((e) => e.startsWith('SLUICE_'))) expect(known, `${name}: ${env} is no Sluice setting`).toContain(env);
    }
    expect(String(compose.services.normalizer!.environment!.SLUICE_S3_ENDPOINT)).toBe('http://s3:9000');
    // Sluice listens on loopback unless told otherwise: in a container the port must be reachable.
    for (const [name, s] of longRunning.filter(([, s]) => s.image === 'sluice:local')) {
      expect(s.environment?.SLUICE_HTTP_HOST, `${name} binds its health and metrics port on every interface`).toBe('0.0.0.0');
      expect(s.environment?.SLUICE_HTTP_API_HOST, `${name} binds its API port on every interface`).toBe('0.0.0.0');
    }
  });

  it('scrapes every processor and provisions Grafana from the repository', () => {
    const prometheus = parse(read('infra/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    const targets = new Map(prometheus.scrape_configs.map((j) => [j.job_name, j.static_configs[0]!.targets[0]!]));
    for (const name of ['ingest-api', 'normalizer', 'export', 'reports', 'connectors-monitor']) {
      const target = targets.get(`sluice-${name}`);
      expect(target, `a scrape job sluice-${name}`).toBeDefined();
      const [host, port] = target!.split(':');
      expect(host).toBe(name);
      const service = compose.services[name]!;
      expect(service.image).toBe('sluice:local');
      expect(JSON.stringify(service.healthcheck!.test), `${name} serves /healthz and /metrics on ${port}`).toContain(`localhost:${port}/healthz`);
    }
    const mounts = (name: string) => [...volumeTargets(compose.services[name]!).entries()].map(([target, source]) => `${source}:${target}`);
    expect(mounts('prometheus')).toEqual(expect.arrayContaining(['./infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml', './infra/prometheus/alerts.yaml:/etc/prometheus/alerts.yaml']));
    expect(mounts('grafana')).toEqual(expect.arrayContaining(['./infra/grafana/provisioning:/etc/grafana/provisioning', './infra/grafana/dashboards:/etc/grafana/dashboards']));
    const provider = parse(read('infra/grafana/provisioning/dashboards/sluice.yaml')) as { providers: { options: { path: string } }[] };
    expect(provider.providers[0]!.options.path).toBe('/etc/grafana/dashboards');
    const datasource = parse(read('infra/grafana/provisioning/datasources/prometheus.yaml')) as { datasources: { uid: string; url: string }[] };
    expect(datasource.datasources[0]).toMatchObject({ uid: 'sluice-prometheus', url: 'http://prometheus:9090' });
  });
});
