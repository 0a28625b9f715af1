import { filesSettings } from '../../files/settings.js';
import { liveSettings } from '../../live/settings.js';
import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coreSettings } from '../../core/config/core-settings.js';
import { loadSettings } from '../../core/config/settings.js';
import { loadConnectorSpec } from '../../core/connect/client.js';
import { createKafka } from '../../core/kafka/client.js';
import { planTopics, type PlannedTopic, type TopicPlanInput } from '../../core/kafka/topic-plan.js';
import { ensureTopics, inspectTopics, type TopicState } from '../../core/kafka/topics.js';
import { loadPipeline } from '../../core/pipeline/lint.js';
import { normalizerSettings } from '../../normalizer/settings.js';
import { reportsSettings } from '../../reports/settings.js';
import { CONNECTORS_DIR, connectorVars } from './connectors.js';

export const EXPORTS_DIR = fileURLToPath(new URL('../../../../connectors/exports', import.meta.url));

function filesIn(dir: string, ext: RegExp): string[] {
  return readdirSync(dir)
    .filter((f) => ext.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * The plan's input from the shipped configuration: the core, normalizer and report
 * settings (env, then --config), the Debezium connector files and the export pipelines.
 */
export function shippedPlanInput(configFile: string | undefined, options: { connectors?: string[]; pipelines?: string[] } = {}): TopicPlanInput {
  const fileOpt = configFile ? { file: configFile } : {};
  const settings = loadSettings({ ...coreSettings, ...normalizerSettings, ...reportsSettings, ...liveSettings, files: { dlqTopic: filesSettings.files.dlqTopic, notificationsTopic: filesSettings.files.notificationsTopic } }, fileOpt);
  const vars = connectorVars(settings);
  return {
    kafka: settings.kafka,
    normalizer: settings.normalizer,
    reports: settings.reports,
    files: settings.files,
    live: settings.live,
    connectors: (options.connectors ?? filesIn(CONNECTORS_DIR, /\.json$/)).map((f) => loadConnectorSpec(f, vars)),
    pipelines: (options.pipelines ?? filesIn(EXPORTS_DIR, /\.ya?ml$/)).map((f) => {
      const p = loadPipeline(f, process.env, { expressions: null });
      return { name: p.name, dlqTopic: p.dlq.topic };
    }),
  };
}

interface Row {
  topic: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
  owner: string;
  createdBy: PlannedTopic['createdBy'];
  purpose: string;
  exists?: boolean;
  differences?: string[];
  errors?: string[];
}

function row(t: PlannedTopic, st: TopicState | undefined): Row {
  return {
    topic: t.topic,
    partitions: t.numPartitions,
    replicationFactor: t.replicationFactor ?? -1,
    configs: Object.fromEntries((t.configEntries ?? []).map((e) => [e.name, e.value])),
    owner: t.owner,
    createdBy: t.createdBy,
    purpose: t.purpose,
    ...(st ? { exists: st.exists, differences: st.differences, errors: st.errors } : {}),
  };
}

function state(r: Row): string {
  if (r.exists === undefined) return '?';
  if (!r.exists) return 'missing';
  const all = [...(r.errors ?? []).map((e) => `ERROR ${e}`), ...(r.differences ?? [])];
  return all.length === 0 ? 'ok' : `differs: ${all.join('; ')}`;
}

function printTable(rows: Row[]): void {
  const table = [['TOPIC', 'PARTITIONS', 'RF', 'CONFIGS', 'CREATED BY', 'STATE']].concat(
    rows.map((r) => [
      r.topic,
      r.partitions === -1 ? 'default' : String(r.partitions),
      r.replicationFactor === -1 ? 'default' : String(r.replicationFactor),
      Object.entries(r.configs).map(([k, v]) => `${k}=${v}`).join(',') || '-',
      r.createdBy === 'kafka-connect' ? `kafka connect (${r.owner})` : r.owner,
      state(r),
    ]),
  );
  const widths = table[0]!.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  for (const line of table) console.log(line.map((c, i) => (i === line.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

async function withAdmin<T>(configFile: string | undefined, fn: (admin: ReturnType<ReturnType<typeof createKafka>['admin']>) => Promise<T>): Promise<T> {
  const s = loadSettings(coreSettings, configFile ? { file: configFile } : {});
  const kafka = createKafka(s.kafka, { region: s.s3.region, clientId: `${s.kafka.clientId}-topics` });
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export function topicsCommand(): Command {
  const cmd = new Command('topics').description(
    'the topic plan: every topic the shipped configuration needs (CDC, events, DLQs, reports), with partitions, replication factor and configs, for clusters that refuse auto-creation (Amazon MSK) and teams that create topics by change request',
  );
  const configFile = (c: Command) => (c.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
  cmd
    .command('plan')
    .description('print every planned topic and whether it exists as planned (exit 0 in every case: it is a reading)')
    .option('--json', 'one JSON object per topic')
    .option('--offline', 'do not ask the cluster; print the plan only')
    .addHelpText(
      'after',
      `
Sources: the settings (SLUICE_NORMALIZER_*, SLUICE_REPORTS_*, SLUICE_KAFKA_TOPIC_REPLICATION_FACTOR,
SLUICE_KAFKA_TOPIC_MIN_INSYNC_REPLICAS), connectors/debezium/*.json (Kafka Connect creates the CDC
topics from their topic.creation.* settings; SLUICE_CDC_TOPIC_PARTITIONS, default 6) and
connectors/exports/*.yaml (their DLQ topics). "default" = the cluster's own default.`,
    )
    .action(async (opts: { json?: boolean; offline?: boolean }, c: Command) => {
      const plan = planTopics(shippedPlanInput(configFile(c)));
      const states = opts.offline ? new Map<string, TopicState>() : new Map((await withAdmin(configFile(c), (admin) => inspectTopics(admin, plan))).map((s) => [s.topic, s]));
      const rows = plan.map((t) => row(t, states.get(t.topic)));
      if (opts.json) for (const r of rows) console.log(JSON.stringify(r));
      else printTable(rows);
    });
  cmd
    .command('apply')
    .description('create every planned topic that does not exist (idempotent); differences of existing topics are reported, never changed')
    .option('--json', 'one JSON object per topic')
    .addHelpText('after', '\nExit 0 when every topic exists (differences are warnings), 1 when an existing topic has a config its owner cannot run with (cleanup.policy of report-status).')
    .action(async (opts: { json?: boolean }, c: Command) => {
      const plan = planTopics(shippedPlanInput(configFile(c)));
      const { created, states } = await withAdmin(configFile(c), async (admin) => {
        const before = await inspectTopics(admin, plan);
        const missing = plan.filter((t) => !before.find((s) => s.topic === t.topic)?.exists);
        const made = missing.length > 0 ? (await ensureTopics(admin, missing)).created : [];
        return { created: made, states: await inspectTopics(admin, plan) };
      });
      const byTopic = new Map(states.map((s) => [s.topic, s]));
      const rows = plan.map((t) => row(t, byTopic.get(t.topic)));
      for (const r of rows) {
        const what = created.includes(r.topic) ? 'created' : state(r);
        if (opts.json) console.log(JSON.stringify({ ...r, created: created.includes(r.topic) }));
        else console.log(`${r.topic}: ${what}`);
      }
      if (rows.some((r) => (r.errors ?? []).length > 0)) process.exitCode = 1;
    });
  return cmd;
}
