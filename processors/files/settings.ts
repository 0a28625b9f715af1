import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { setting, type SettingsOf } from '../core/config/settings.js';
import { commaList, hostList, networkList, topicName } from '../core/config/values.js';
import { CHANNELS } from '../ingest-api/validation.js';
import { HEAP_DEFAULTS } from './heap-defaults.js';
import { heapSettings } from '../core/config/heap-settings.js';

const prefix = z.string().regex(/^[^/\s][^\s]*\/$/, 'a key prefix ending with "/"');

/** One partner or batch system that drops files under incoming/<name>/. */
export const fileSourceSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a source name: lower-case letters, digits, _ and - (it is the folder under the incoming prefix)'),
  format: z.enum(['csv', 'jsonl']),
  /** CSV field delimiter (one character). */
  delimiter: z.string().length(1).default(','),
  /** The channel (docs/domain.md source column) of rows that name none. */
  channel: z.enum(CHANNELS).default('backend'),
});
export type FileSource = z.output<typeof fileSourceSchema>;

/**
 * `name:format[:delimiter]` entries separated by commas (partner-a:csv,partner-b:jsonl,
 * partner-c:csv:;), or, from the YAML file, a list of {name, format, delimiter, channel}.
 * Env values may also be a JSON list.
 */
const sources = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const text = v.trim();
    if (text.startsWith('[')) return parseYaml(text) as unknown;
    return commaList(text).map((entry) => {
      const [name, format, delimiter] = entry.split(':');
      return { name, format, ...(delimiter ? { delimiter } : {}) };
    });
  },
  z
    .array(fileSourceSchema)
    .min(1, 'at least one source')
    .refine((list) => new Set(list.map((s) => s.name)).size === list.length, 'each source name once'),
);

/**
 * `sluice files`' own settings (env SLUICE_FILES_*), beside the core ones (database.url is
 * the staging database, s3.* the bucket unless files.bucket names another). `sluice files
 * --help` prints them.
 */
export const filesSettings = {
  files: {
    sources: setting(sources, {
      doc: 'the sources whose files are ingested, each watched under <incomingPrefix><name>/: `name:format[:delimiter]` comma-separated (format csv or jsonl), or in the config file a list of {name, format, delimiter, channel}',
      example: 'partner-a:csv,partner-b:jsonl',
    }),
    bucket: setting(z.string().min(3).optional(), { doc: 'bucket the files are dropped into; unset: the core s3.bucket' }),
    incomingPrefix: setting(prefix, { doc: 'where files are dropped: <prefix><source>/<any path>', default: 'incoming/' }),
    processedPrefix: setting(prefix, { doc: 'where a processed file is moved (afterProcessing=move): <prefix><source>/<path under incoming>', default: 'processed/' }),
    failedPrefix: setting(prefix, { doc: 'where a failed file is moved (afterProcessing=move)', default: 'failed/' }),
    rejectsPrefix: setting(prefix, { doc: 'rejected rows: <prefix><source>/<date>/<file>.rejects.csv', default: 'rejects/' }),
    receiptsPrefix: setting(prefix, { doc: 'receipts: <prefix><source>/<date>/<file>.json', default: 'receipts/' }),
    afterProcessing: setting(z.enum(['move', 'tag', 'keep']), {
      doc: 'what happens to a file once done: move (copy + delete to processed/ or failed/), tag (S3 object tag sluice-status=<status>; needs s3:PutObjectTagging) or keep (the ledger alone remembers it)',
      default: 'move',
    }),
    pollIntervalMs: setting(z.coerce.number().int().min(100).max(3_600_000), { doc: 'pause between two listings of the incoming prefixes', default: 10_000 }),
    listPageSize: setting(z.coerce.number().int().min(1).max(1000), { doc: 'keys a ListObjectsV2 page holds; the listing cursor is saved after each page', default: 1000 }),
    batchRows: setting(z.coerce.number().int().min(1).max(50_000), {
      doc: 'rows inserted per transaction (COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING); the ledger records the file offset in the same transaction. At most four batches are in memory at once: one written, two prepared ahead on the parsing thread, one being read',
      default: 10_000,
    }),
    maxRecordBytes: setting(z.coerce.number().int().min(1024).max(64 * 1024 * 1024), {
      doc: 'longest record (CSV record or JSON line) in bytes: a longer JSON line is rejected (record_too_large) and the file goes on; a longer CSV record fails the file (record_too_large), as a CSV parser cannot find the next record reliably after it',
      default: 1024 * 1024,
    }),
    baseCurrency: setting(z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code in capitals'), {
      doc: 'the deployment base currency every money row must carry (keep it equal to the ingest API and the normalizer)',
      default: 'USD',
      example: 'EUR',
    }),
    dlqTopic: setting(topicName, { doc: 'dead-letter topic of rejected rows (the original line, sluice.dlq.* headers)', default: 'files.dlq' }),
    notificationsTopic: setting(topicName.optional(), {
      doc: 'Kafka topic of S3 event notifications (JSON, as S3 / EventBridge / MinIO write them) for buckets that publish them: objects are processed as soon as they are notified, beside the listing (keep the listing as the safety net). Unset: listing only',
      example: 's3-events.incoming',
    }),
    notificationsGroupId: setting(z.string().min(1), { doc: 'consumer group of the notifications topic', default: 'sluice-files-notifications' }),
    rejectRateAlert: setting(z.coerce.number().min(0).max(1), { doc: 'notify when a file rejects more than this share of its rows (0.05 = 5 %)', default: 0.05 }),
    notifyEmail: setting(z.string().optional(), { doc: 'comma-separated addresses told of a failed file or a reject rate over rejectRateAlert' }),
    notifyWebhook: setting(z.string().url().optional(), { doc: 'Slack-compatible webhook told of a failed file or a reject rate over rejectRateAlert (its host must be in webhookAllowedHosts)', secret: true }),
    smtpUrl: setting(z.string().regex(/^smtps?:\/\//, 'an smtp:// or smtps:// URL').optional(), {
      doc: 'SMTP server for email notifications, e.g. smtps://user:pass@mail.example.com:465',
      secret: true,
    }),
    mailFrom: setting(z.string().min(3), { doc: 'sender address of notification emails', default: 'Sluice files <files@sluice.local>' }),
    webhookAllowedHosts: setting(hostList, { doc: 'comma-separated host names the webhook may call (`*.example.com` allows its subdomains); empty: none', default: '', example: 'hooks.slack.com' }),
    webhookAllowedNetworks: setting(networkList, {
      doc: 'comma-separated networks (CIDR) the webhook may reach although private, loopback or link-local',
      default: '',
      example: '10.20.0.0/16',
    }),
    webhookTimeoutMs: setting(z.coerce.number().int().min(100).max(120_000), { doc: 'how long one webhook call may take', default: 10_000 }),
    dbPoolMax: setting(z.coerce.number().int().min(2).max(100), { doc: 'most PostgreSQL connections of this instance', default: 4 }),
    ...heapSettings('files', HEAP_DEFAULTS, {
      semiSpace: "Not needed to keep the peak RSS flat: S3's dead socket buffers are freed by a young-generation collection every 4 MiB read",
    }),
    httpPort: setting(z.coerce.number().int().min(0).max(65535), { doc: 'port of /healthz, /readyz and /metrics (0 picks a free one)', default: 9470 }),
  },
};

export type FilesSettings = SettingsOf<typeof filesSettings>['files'];
