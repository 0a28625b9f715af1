import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Command, InvalidArgumentError } from 'commander';
import { createPool } from '../../core/db/pool.js';
import { PermanentError } from '../../core/errors/errors.js';
import { describeSettings, loadSettings } from '../../core/config/settings.js';
import { createS3Client } from '../../core/s3/client.js';
import { startFiles } from '../../files/files.js';
import { Ledger, type LedgerRow } from '../../files/ledger.js';
import { outputKeys } from '../../files/outputs.js';
import { FILE_FAILURE_REASONS, ROW_REASONS } from '../../files/reasons.js';
import { filesSettings } from '../../files/settings.js';
import { cliSettings } from '../context.js';

class FilesCommandError extends PermanentError {}

/** Settings `status` and `retry` need: the prefixes and bucket (sources may be unset there). */
const locationSpec = {
  files: {
    bucket: filesSettings.files.bucket,
    incomingPrefix: filesSettings.files.incomingPrefix,
    processedPrefix: filesSettings.files.processedPrefix,
    failedPrefix: filesSettings.files.failedPrefix,
    rejectsPrefix: filesSettings.files.rejectsPrefix,
    receiptsPrefix: filesSettings.files.receiptsPrefix,
  },
};

const configFile = (c: Command): string | undefined => (c.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;

function since(value: string): Date {
  const relative = /^(\d+)([mhd])$/.exec(value);
  if (relative) return new Date(Date.now() - Number(relative[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 'm' | 'h' | 'd']);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError('an ISO date or time (2026-11-01, 2026-11-01T10:00:00Z) or an age (30m, 12h, 7d)');
  return d;
}

/** `sluice files`: the file ingest processor, with `status` and `retry`. */
export function filesCommand(): Command {
  const reasons = [...Object.entries(FILE_FAILURE_REASONS), ...Object.entries(ROW_REASONS).map(([k, v]) => [`${k} (row)`, v] as const)].map(([k, v]) => `  ${k}: ${v}`).join('\n');
  const cmd = new Command('files')
    .description('ingest partner files dropped in S3 (incoming/<source>/*.csv|jsonl, gzipped or not) into staging.agent_events, once per file, with a ledger, receipts, rejects and a DLQ')
    .addHelpText(
      'after',
      `\nIts settings (beside the shared ones of \`sluice config docs\`):\n\n${describeSettings(filesSettings)}\n\nReason codes of a failed file and of rejected rows (beside the ingest API's validation codes):\n${reasons}\n\nServes /healthz, /readyz and /metrics on SLUICE_FILES_HTTP_PORT; SIGTERM/SIGINT stop it after the batch in progress (a SIGKILL resumes the file after its last committed batch).`,
    )
    .action(async (_opts, c: Command) => {
      const file = configFile(c);
      await startFiles({ handleSignals: true, ...(file ? { configFile: file } : {}) });
    });

  cmd
    .command('status')
    .description('recent files from the ledger (staging.file_ingestions), newest first, with their counts and state')
    .option('--source <name>', 'only this source')
    .option('--since <when>', 'discovered since: an ISO date/time or an age (30m, 12h, 7d)', since)
    .option('--limit <n>', 'most files listed', (v) => Number(v), 50)
    .option('--json', 'one JSON object per file')
    .addHelpText('after', '\nStates: pending, processing (rows being read; committed_rows says how far), finishing (outputs being written), succeeded, failed (error_reason says why), duplicate (same sha256 as an earlier file).')
    .action(async (opts: { source?: string; since?: Date; limit: number; json?: boolean }, c: Command) => {
      const core = cliSettings(c);
      const pool = createPool(core.database.url, { max: 1, applicationName: 'sluice-files-status' });
      try {
        const rows = await new Ledger(pool).list({ source: opts.source, since: opts.since, limit: opts.limit });
        if (opts.json) for (const r of rows) console.log(JSON.stringify(statusJson(r)));
        else printStatus(rows);
      } finally {
        await pool.end();
      }
    });

  cmd
    .command('retry')
    .argument('<key>', 'the key the file was dropped under (incoming/<source>/...), as `sluice files status` lists it')
    .description('runs a failed file again: moves it back from failed/ to its incoming key (when it was moved) and resets its ledger row, so the running `sluice files` reads it from its first row (rows already stored count as duplicates)')
    .action(async (key: string, _opts, c: Command) => {
      const core = cliSettings(c);
      const s = loadSettings(locationSpec, configFile(c) ? { file: configFile(c)! } : {}).files;
      const bucket = s.bucket ?? core.s3.bucket;
      const pool = createPool(core.database.url, { max: 1, applicationName: 'sluice-files-retry' });
      const s3 = createS3Client(core.s3);
      try {
        const ledger = new Ledger(pool);
        const row = await ledger.latestOf(bucket, key);
        if (!row) throw new FilesCommandError(`no file ${key} in the ledger of bucket ${bucket}; \`sluice files status\` lists the keys`);
        if (row.status !== 'failed') throw new FilesCommandError(`${key} is ${row.status}, not failed: only a failed file is retried`);
        const failedKey = outputKeys(s, row).failed;
        const atIncoming = await exists(s3, bucket, key);
        if (!atIncoming) {
          if (!(await exists(s3, bucket, failedKey))) throw new FilesCommandError(`${key} is neither at its key nor at ${failedKey}; drop the file again instead`);
          // Reset before the object is back under its key: a running `sluice files` that lists it
          // meanwhile must find a pending row, not a failed one (it would move the object away again).
          await ledger.resetForRetry(row.fileId);
          await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}/${failedKey.split('/').map(encodeURIComponent).join('/')}` }));
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: failedKey }));
        }
        // A copy may get another ETag (or version id): then it is a new file to the ledger, and the failed row stays as history.
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const version = head.VersionId && head.VersionId !== 'null' ? head.VersionId : (head.ETag ?? '');
        if (version !== row.version) {
          if (!atIncoming) await ledger.restore(row);
        } else if (atIncoming) await ledger.resetForRetry(row.fileId);
        console.log(`${key}: ${atIncoming ? 'reset' : `moved back from ${failedKey}${version === row.version ? ' and reset' : ' (a new version to the ledger)'}`}; \`sluice files\` reads it again at its next poll`);
      } finally {
        await pool.end();
        s3.destroy();
      }
    });
  return cmd;
}

async function exists(s3: ReturnType<typeof createS3Client>, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

function statusJson(r: LedgerRow): Record<string, unknown> {
  return {
    file_id: r.fileId,
    source: r.source,
    key: r.key,
    version: r.version,
    status: r.status,
    size_bytes: r.size,
    sha256: r.sha256,
    rows: { read: r.rowsRead, accepted: r.rowsAccepted, rejected: r.rowsRejected, duplicate: r.rowsDuplicate },
    committed_rows: r.committedRows,
    duplicate_of: r.duplicateOf,
    error: r.errorReason ? { reason: r.errorReason, message: r.firstError } : null,
    attempts: r.attempts,
    discovered_at: r.discoveredAt.toISOString(),
    started_at: r.startedAt?.toISOString() ?? null,
    finished_at: r.finishedAt?.toISOString() ?? null,
    disposition: r.disposition,
  };
}

function printStatus(rows: readonly LedgerRow[]): void {
  if (rows.length === 0) {
    console.log('no files');
    return;
  }
  const table = rows.map((r) => [
    String(r.fileId),
    r.source,
    r.key,
    r.status,
    String(r.rowsRead),
    String(r.rowsAccepted),
    String(r.rowsRejected),
    String(r.rowsDuplicate),
    String(r.attempts),
    r.discoveredAt.toISOString().slice(0, 19) + 'Z',
    r.errorReason ?? (r.duplicateOf !== null ? `duplicate of ${r.duplicateOf}` : ''),
  ]);
  const header = ['id', 'source', 'key', 'status', 'read', 'accepted', 'rejected', 'duplicate', 'attempts', 'discovered', 'error'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  for (const line of [header, ...table]) console.log(line.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd());
}
