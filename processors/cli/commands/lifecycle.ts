import { Command, InvalidArgumentError } from 'commander';
import { configuredEndpoint, createS3Client } from '../../core/s3/client.js';
import { applyLifecycle, DEFAULT_LIFECYCLE, lifecycleRules, LifecycleUnsupportedError } from '../../ops/lifecycle.js';
import { cliSettings } from '../context.js';

const days = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of days >= 1');
  return n;
};

/** `sluice lifecycle apply`: lake objects to cold storage after a year, report files expired. */
export function lifecycleCommand(): Command {
  const cmd = new Command('lifecycle').description('the bucket lifecycle configuration: lake objects to a cold storage class, report files expired');
  cmd.addCommand(
    new Command('apply')
      .description('put the lifecycle rules on the bucket (replacing its lifecycle configuration) and read them back')
      .option('--lake-prefix <prefix>', 'prefix of the lake objects', DEFAULT_LIFECYCLE.lakePrefix)
      .option('--cold-after-days <n>', 'days after which lake objects move to the cold class', days, DEFAULT_LIFECYCLE.coldAfterDays)
      .option('--cold-storage-class <class>', 'the cold storage class (GLACIER_IR, GLACIER, DEEP_ARCHIVE, STANDARD_IA...)', DEFAULT_LIFECYCLE.coldStorageClass)
      .option('--reports-prefix <prefix>', 'prefix of the report files', DEFAULT_LIFECYCLE.reportsPrefix)
      .option('--expire-reports-after-days <n>', 'days after which report files are deleted', days, DEFAULT_LIFECYCLE.expireReportsAfterDays)
      .option('--abort-incomplete-uploads-after-days <n>', 'days after which unfinished multipart uploads are aborted', days, DEFAULT_LIFECYCLE.abortIncompleteUploadsAfterDays)
      .option('--dry-run', 'print the rules, change nothing')
      .action(async (o: { lakePrefix: string; coldAfterDays: number; coldStorageClass: string; reportsPrefix: string; expireReportsAfterDays: number; abortIncompleteUploadsAfterDays: number; dryRun?: boolean }, c: Command) => {
        const s = cliSettings(c);
        const rules = lifecycleRules({ ...o, coldStorageClass: o.coldStorageClass as never });
        if (o.dryRun) {
          console.log(`would put on s3://${s.s3.bucket}:\n${JSON.stringify(rules, null, 2)}`);
          return;
        }
        try {
          const r = await applyLifecycle(createS3Client(s.s3), s.s3.bucket, rules, configuredEndpoint(s.s3) ?? 'AWS S3');
          if (r.replaced.length > 0) console.log(`replaced rules that were on the bucket: ${r.replaced.join(', ')}`);
          console.log(`s3://${s.s3.bucket} lifecycle, as read back:\n${JSON.stringify(r.readBack, null, 2)}`);
        } catch (error) {
          if (error instanceof LifecycleUnsupportedError) {
            console.error(`sluice lifecycle: ${error.message}`);
            process.exitCode = 2;
            return;
          }
          throw error;
        }
      }),
  );
  return cmd;
}
