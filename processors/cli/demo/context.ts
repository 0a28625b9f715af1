import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { CoreSettings } from '../../core/config/core-settings.js';
import { createKafka } from '../../core/kafka/client.js';
import { createLogger, type Logger } from '../../core/log/logger.js';
import { stackStateDir } from '../commands/stack.js';

/**
 * What every demo step shares: the settings, one log file for the demo's own clients and
 * for the processors it runs in-process (so the terminal shows only the steps), and the
 * lines it prints.
 */
export interface DemoContext {
  settings: CoreSettings;
  logger: Logger;
  /** The log file, as shown to the user (relative to the working folder when inside it). */
  logFile: string;
  /** The env for processors started in-process: their JSON logs go to the demo's log file. */
  processorEnv: NodeJS.ProcessEnv;
  /** A Kafka client whose kafkajs logs go to the log file. */
  kafka: Kafka;
  /** A line under the current step: something done. */
  ok(text: string): void;
  /** A line under the current step: something it waits for. */
  waiting(text: string): void;
  /** Where a server's log file is (the local stack's logs folder). */
  serverLog(component: 'postgres' | 'kafka' | 's3' | 'registry' | 'connect'): string;
}

const shown = (path: string) => {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
};

export function demoContext(settings: CoreSettings, env: NodeJS.ProcessEnv = process.env): DemoContext {
  const logs = join(stackStateDir(env), 'logs');
  const file = env.SLUICE_LOG_FILE || join(logs, 'demo.log');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, ''); // one run's logs, from its start
  const level = env.SLUICE_LOG_LEVEL || 'info';
  const logger = createLogger({ name: 'demo', level, file });
  routeProcessWarnings(logger);
  return {
    settings,
    logger,
    logFile: shown(file),
    processorEnv: { ...env, SLUICE_LOG_LEVEL: level, SLUICE_LOG_FILE: file },
    kafka: createKafka(settings.kafka, { region: settings.s3.region, logger, clientId: `${settings.kafka.clientId}-demo` }),
    ok: (text) => console.log(`      ok  ${text}`),
    waiting: (text) => console.log(`      ..  ${text}`),
    serverLog: (component) => shown(join(logs, `${component}.log`)),
  };
}

/**
 * Node prints process warnings (the AWS SDK's Node version notice, deprecations) on stderr
 * by default; the demo logs them instead, so its output holds only its steps.
 */
function routeProcessWarnings(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => logger.warn({ warning: w.name, code: (w as { code?: string }).code }, w.message));
}
