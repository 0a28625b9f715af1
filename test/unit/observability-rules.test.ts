import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConnectorMetrics } from '../../processors/core/connect/metrics.js';
import { createMetricsRegistry } from '../../processors/core/metrics/metrics.js';
import { ExportMetrics } from '../../processors/export/metrics.js';
import { FilesMetrics } from '../../processors/files/metrics.js';
import { CompactMetrics } from '../../processors/compact/metrics.js';
import { LiveMetrics } from '../../processors/live/metrics.js';
import { IngestApiMetrics } from '../../processors/ingest-api/metrics.js';
import { NormalizerMetrics } from '../../processors/normalizer/metrics.js';
import { ReportsMetrics } from '../../processors/reports/metrics.js';
import { ROOT } from '../support/build.js';

/**
 * The alert rules (infra/prometheus/alerts.yaml) and the Grafana dashboard
 * (infra/grafana/dashboards/sluice.json) may only use metrics the processors export: a
 * misspelt name is an alert that never fires and a panel that stays empty. Names come from
 * the processors' own metric classes, so renaming a metric fails here.
 */

const ALERTS = join(ROOT, 'infra/prometheus/alerts.yaml');
const DASHBOARD = join(ROOT, 'infra/grafana/dashboards/sluice.json');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const groups = (parse(readFileSync(ALERTS, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups;
const rules = groups.flatMap((g) => g.rules);
const jobs = (parse(readFileSync(join(ROOT, 'infra/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[] }).scrape_configs.map((j) => j.job_name);

async function exportedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>(['up']);
  const registries = [createMetricsRegistry('unit')];
  for (const make of [
    (r: Registry) => new ExportMetrics(r),
    (r: Registry) => new NormalizerMetrics(r),
    (r: Registry) => new ReportsMetrics(r),
    (r: Registry) => new IngestApiMetrics(r),
    (r: Registry) => new ConnectorMetrics(r),
    (r: Registry) => new FilesMetrics(r),
    (r: Registry) => new LiveMetrics(r),
    (r: Registry) => new CompactMetrics(r),
  ]) {
    const r = new Registry();
    make(r);
    registries.push(r);
  }
  for (const r of registries) {
    for (const m of await r.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
      if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
    }
  }
  return names;
}

const FUNCTIONS = new Set(['absent', 'rate', 'increase', 'deriv', 'sum', 'max', 'min', 'avg', 'count', 'time', 'clamp_min', 'histogram_quantile', 'topk', 'delta', 'irate', 'abs']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);

/** The metric names a PromQL expression reads (strings, label matchers, ranges and grouping labels left out). */
export function metricNames(expr: string): { metrics: string[]; functions: string[] } {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' ');
  const metrics: string[] = [];
  const functions: string[] = [];
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    if (KEYWORDS.has(word)) continue;
    const after = bare.slice(m.index! + word.length).trimStart();
    (after.startsWith('(') ? functions : metrics).push(word);
  }
  return { metrics, functions };
}

describe('metricNames', () => {
  it('finds the metrics of an expression and nothing else', () => {
    expect(metricNames('sum by (pipeline, reason) (increase(sluice_export_records_dlq_total{reason=~"a|b"}[10m])) > 0 and up{job="x"} == 1e-9')).toEqual({
      metrics: ['sluice_export_records_dlq_total', 'up'],
      functions: ['sum', 'increase'],
    });
  });
});

describe('infra/prometheus/alerts.yaml', () => {
  it('reads only metrics the processors export, with known functions', async () => {
    const known = await exportedMetricNames();
    for (const r of rules) {
      const { metrics, functions } = metricNames(r.expr);
      expect(metrics.length, `${r.alert} reads no metric`).toBeGreaterThan(0);
      for (const m of metrics) expect(known, `${r.alert}: no processor exports ${m}`).toContain(m);
      for (const f of functions) expect(FUNCTIONS, `${r.alert}: ${f}() is not a PromQL function this file uses`).toContain(f);
    }
  });

  it('gives every rule a unique name, a severity and a summary', () => {
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const r of rules) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
    }
  });

  it('alerts on every processor down or absent, each DLQ, uploads, reports, the connector and the slot', () => {
    const exprs = rules.map((r) => r.expr.replace(/\s+/g, ' '));
    const has = (re: RegExp) => exprs.some((e) => re.test(e));
    expect(has(/^up\{job=~"sluice-\.\*"\} == 0$/)).toBe(true);
    const processorJobs = jobs.filter((j) => j.startsWith('sluice-'));
    expect(processorJobs).toEqual(['sluice-ingest-api', 'sluice-normalizer', 'sluice-export', 'sluice-reports', 'sluice-live', 'sluice-files', 'sluice-compact', 'sluice-connectors-monitor']);
    for (const job of processorJobs) expect(exprs, `absent() alert for ${job}`).toContain(`absent(up{job="${job}"})`);
    expect(has(/increase\(sluice_normalizer_dead_letters_total\[/)).toBe(true);
    expect(has(/increase\(sluice_live_dead_letters_total\[/)).toBe(true);
    expect(has(/sum\(sluice_live_lag_records\) > \d+/)).toBe(true);
    expect(has(/increase\(sluice_export_records_dlq_total\[/)).toBe(true);
    expect(has(/increase\(sluice_reports_requests_total\{outcome="dead_letter"\}\[/)).toBe(true);
    expect(has(/increase\(sluice_export_upload_failures_total\[/)).toBe(true);
    expect(has(/increase\(sluice_reports_requests_total\{outcome="failed"\}\[/)).toBe(true);
    expect(has(/^sluice_connector_running == 0$/)).toBe(true);
    expect(has(/^sluice_connector_tasks_not_running > 0$/)).toBe(true);
    expect(has(/^sluice_connector_stalled == 1$/)).toBe(true);
    expect(has(/deriv\(sluice_replication_slot_retained_wal_bytes\[/)).toBe(true);
    expect(has(/sluice_files_oldest_unprocessed_seconds\) > \d+/)).toBe(true);
    expect(has(/increase\(sluice_files_total\{status="failed"\}\[/)).toBe(true);
  });

  // promtool is the Prometheus project's own checker; .ci/run installs it (Debian's prometheus package).
  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
  it(promtool ? 'passes `promtool check rules` and `promtool check config`' : 'parses as Prometheus rule groups (promtool is not installed here: the parser checks alone)', () => {
    if (promtool) {
      const rulesCheck = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
      expect(rulesCheck.status, rulesCheck.stdout + rulesCheck.stderr).toBe(0);
      expect(rulesCheck.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
      const configCheck = spawnSync('promtool', ['check', 'config', join(ROOT, 'infra/prometheus/prometheus.yml')], { encoding: 'utf8' });
      expect(configCheck.status, configCheck.stdout + configCheck.stderr).toBe(0);
    } else {
      for (const g of groups) {
        expect(g.name).toMatch(/^sluice-/);
        for (const r of g.rules) {
          expect(Object.keys(r).every((k) => ['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)), r.alert).toBe(true);
          if (r.for) expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
          expect(r.expr.split('(').length, `${r.alert}: parentheses`).toBe(r.expr.split(')').length);
        }
      }
    }
  });
});

describe('infra/grafana/dashboards/sluice.json', () => {
  interface Panel {
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: { expr: string }[];
  }
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[] };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

  it('queries only metrics the processors export, from the provisioned data source', async () => {
    const known = await exportedMetricNames();
    expect(exprs.length).toBeGreaterThan(30);
    for (const { panel, expr } of exprs) {
      for (const m of metricNames(expr).metrics) expect(known, `panel "${panel}": no processor exports ${m}`).toContain(m);
    }
    for (const p of panels) expect(p.datasource?.uid, p.title).toBe('sluice-prometheus');
  });

  it('shows per processor the rate, lag in records and seconds, DLQ by reason, flush and upload latency, failures', () => {
    const reads = (metric: string, extra = '') => exprs.some((e) => e.expr.includes(metric) && e.expr.includes(extra));
    for (const rate of ['sluice_ingest_api_events_total', 'sluice_normalizer_records_total', 'sluice_export_records_out_total', 'sluice_reports_requests_total']) expect(reads(rate, 'rate('), rate).toBe(true);
    for (const lag of ['sluice_normalizer_consumer_lag', 'sluice_normalizer_consumer_lag_seconds', 'sluice_export_consumer_lag', 'sluice_export_consumer_lag_seconds']) expect(reads(lag), lag).toBe(true);
    expect(reads('sluice_normalizer_dead_letters_total', 'by (reason)')).toBe(true);
    expect(reads('sluice_export_records_dlq_total', 'reason')).toBe(true);
    expect(reads('sluice_export_flush_seconds_bucket', 'histogram_quantile')).toBe(true);
    expect(reads('sluice_export_upload_failures_total')).toBe(true);
    expect(reads('sluice_reports_requests_total', 'failed')).toBe(true);
    expect(reads('sluice_ingest_api_requests_total', '5..')).toBe(true);
    expect(reads('sluice_replication_slot_retained_wal_bytes')).toBe(true);
    expect(reads('sluice_connector_stalled')).toBe(true);
  });
});
