import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../../../infra/local/stack', import.meta.url));

/** The local stack's state folder (its data, pid and log files), as infra/local/lib/common.sh sets it. */
export function stackStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.SLUICE_STATE_DIR || fileURLToPath(new URL('../../../../.sluice', import.meta.url));
}

/** Runs infra/local/stack, the local stack without Docker, with the terminal attached. */
export function runStack(args: string[]): number {
  const result = spawnSync('bash', [script, ...args], { stdio: 'inherit' });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

export function stackCommand(): Command {
  const stack = new Command('stack').description(
    'the local stack without Docker: PostgreSQL, Kafka (KRaft), S3Proxy, Apicurio Registry, Kafka Connect + Debezium',
  );
  const sub = (name: string, description: string, args: string[] = []) =>
    stack
      .command(name)
      .description(description)
      .argument('[components...]', 'postgres, kafka, s3, registry, connect (default: all)')
      .action((components: string[]) => {
        process.exitCode = runStack([name, ...args, ...components]);
      });
  sub('up', 'start (idempotent): download what is missing, start, wait for health checks, print endpoints');
  sub('down', 'stop, in reverse order of start');
  stack
    .command('kill')
    .description('SIGKILL components, as a crash or an OOM kill would (fault drills); `sluice stack up` starts them again')
    .argument('<components...>', 'postgres, kafka, s3, registry, connect')
    .action((components: string[]) => {
      process.exitCode = runStack(['kill', ...components]);
    });
  stack
    .command('status')
    .description('up/down per component; exit code 0 only when all are up and healthy')
    .action(() => {
      process.exitCode = runStack(['status']);
    });
  stack
    .command('env')
    .description('print the endpoints as shell exports (eval "$(sluice stack env)")')
    .action(() => {
      process.exitCode = runStack(['env']);
    });
  stack
    .command('logs')
    .description("follow one component's log file")
    .argument('<component>', 'postgres, kafka, s3, registry or connect')
    .action((component: string) => {
      process.exitCode = runStack(['logs', component]);
    });
  return stack;
}
