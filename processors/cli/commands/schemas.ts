import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SluiceError } from '../../core/errors/errors.js';
import { withRetry } from '../../core/errors/retry.js';
import { RegistryRestClient, SchemaIncompatibleError, type RegistryAuth } from '../../core/registry/ccompat.js';
import { checkSchemasOffline, type ContractReport } from '../../core/schemas/check.js';
import { displayPath, SchemaContractError, type Contract } from '../../core/schemas/contracts.js';
import { checkOnline, registerContract, type OnlineReport } from '../../core/schemas/registry-gate.js';
import { cliSettings } from '../context.js';

/** The project's schemas folder, wherever the command runs from (the build in dist/ or the sources). */
export const SCHEMAS_DIR = join(projectDir(), 'schemas');

function projectDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Exit codes: 0 all compatible, 1 a contract is invalid or incompatible, 2 the registry could not be asked. */
export const EXIT_OK = 0;
export const EXIT_INCOMPATIBLE = 1;
export const EXIT_REGISTRY_UNAVAILABLE = 2;

export interface CliOutput {
  log(line: string): void;
  error(line: string): void;
}

export interface RegistryTarget {
  url: string;
  auth?: RegistryAuth | undefined;
}

export interface SchemasCheckOptions {
  dir: string;
  /** Also ask the registry (its compatibility endpoint, under the subject's level there). */
  registry?: RegistryTarget | undefined;
  /** Compare with the git history of the vN.avsc files too (default true). */
  history?: boolean | undefined;
}

const registryRetry = { policy: { maxAttempts: 4 } };

function versionRange(c: Contract): string {
  const last = c.versions[c.versions.length - 1]!.version;
  return last === 1 ? 'v1' : `v1..v${last}`;
}

function contractHeader(c: Contract): string {
  return `${c.name}: subject ${c.subject}, topic ${c.topic}, level ${c.compatibility}, versions ${versionRange(c)} (current v${c.versions[c.versions.length - 1]!.version})`;
}

function offlineLine(r: ContractReport): string {
  if (r.problems.length > 0) {
    const lines = r.problems.reduce((n, p) => n + p.messages.length, 0);
    return `  offline: INCOMPATIBLE (${lines} problem${lines === 1 ? '' : 's'}, listed above)`;
  }
  if (r.level === 'NONE') return '  offline: not checked (level NONE)';
  const compared = r.compared.length === 0 ? `nothing earlier (v${r.current.version} is the first schema)` : r.compared.join(', ');
  const edited = r.editedInPlace.map((e) => `; v${e.version} edited in place, compatible with ${e.compared.join(', ')}`).join('');
  return `  offline: compatible; v${r.current.version} compared with ${compared}${edited}`;
}

function onlineLine(url: string, r: OnlineReport): string[] {
  const lines = [`  online (${url}): ${r.compatible ? 'compatible' : 'INCOMPATIBLE'}; ${r.detail}`];
  if (r.levelMismatch) lines.push(`  note: ${r.levelMismatch}`);
  return lines;
}

/**
 * `sluice schemas check`: the offline gate always (files and their git history), the
 * registry's verdict too when a registry is given. Prints one message per problem (stderr)
 * and a summary per contract (stdout); returns the exit code.
 */
export async function runSchemasCheck(options: SchemasCheckOptions, out: CliOutput = console): Promise<number> {
  let reports: ContractReport[];
  try {
    reports = checkSchemasOffline(options.dir, { history: options.history !== false });
  } catch (error) {
    if (error instanceof SchemaContractError) {
      out.error(`sluice: ${error.message}`);
      return EXIT_INCOMPATIBLE;
    }
    throw error;
  }
  let failed = 0;
  let unavailable = false;
  const client = options.registry ? new RegistryRestClient(options.registry.url, options.registry.auth) : undefined;
  for (const report of reports) {
    for (const problem of report.problems) for (const m of problem.messages) out.error(m);
    out.log(contractHeader(report.contract));
    out.log(offlineLine(report));
    let ok = report.problems.length === 0;
    if (client && options.registry) {
      try {
        const online = await withRetry(() => checkOnline(client, report.contract), registryRetry);
        for (const l of onlineLine(options.registry.url, online)) out.log(l);
        if (!online.compatible) {
          ok = false;
          out.error(
            `${report.current.file}: the registry at ${options.registry.url} rejects it for subject ${report.contract.subject}` +
              (report.problems.length > 0
                ? ' (the registry gives no field-level reason: see the offline messages)'
                : ' although the offline check passed: the registry holds versions the repository does not have, or applies another level'),
          );
        }
      } catch (error) {
        if (!(error instanceof SluiceError)) throw error;
        unavailable = true;
        out.log(`  online (${options.registry.url}): NOT CHECKED`);
        out.error(`sluice: ${error.message}`);
      }
    }
    for (const note of report.notes) out.log(`  note: ${note}`);
    if (!ok) failed++;
  }
  const mode = !options.registry
    ? 'offline only (--online asks the registry too)'
    : unavailable
      ? 'offline; the registry could not be asked'
      : 'offline and online';
  if (failed > 0) {
    out.log(`schemas check: ${failed} of ${reports.length} contract${reports.length === 1 ? '' : 's'} INCOMPATIBLE, ${mode}`);
    return EXIT_INCOMPATIBLE;
  }
  if (unavailable) {
    out.log(`schemas check: ${reports.length} contract${reports.length === 1 ? '' : 's'} compatible offline; NOT CHECKED online: the registry could not be asked`);
    return EXIT_REGISTRY_UNAVAILABLE;
  }
  out.log(`schemas check: ${reports.length} contract${reports.length === 1 ? '' : 's'} compatible, ${mode}`);
  return EXIT_OK;
}

export interface SchemasRegisterOptions {
  dir: string;
  registry: RegistryTarget;
}

/**
 * `sluice schemas register`: the offline gate first (for its field-level reasons), then every
 * version v1..vN in order under each subject, with contract.yaml's level put in place first.
 */
export async function runSchemasRegister(options: SchemasRegisterOptions, out: CliOutput = console): Promise<number> {
  let reports: ContractReport[];
  try {
    reports = checkSchemasOffline(options.dir);
  } catch (error) {
    if (error instanceof SchemaContractError) {
      out.error(`sluice: ${error.message}`);
      return EXIT_INCOMPATIBLE;
    }
    throw error;
  }
  const bad = reports.filter((r) => r.problems.length > 0);
  if (bad.length > 0) {
    for (const r of bad) for (const p of r.problems) for (const m of p.messages) out.error(m);
    out.error(`sluice: nothing registered: ${bad.map((r) => r.contract.name).join(', ')} failed the offline check (sluice schemas check)`);
    return EXIT_INCOMPATIBLE;
  }
  const client = new RegistryRestClient(options.registry.url, options.registry.auth);
  let count = 0;
  for (const { contract } of reports) {
    out.log(`${contract.subject} (${displayPath(contract.dir)}, level ${contract.compatibility}) at ${options.registry.url}`);
    try {
      const registered = await withRetry(() => registerContract(client, contract), registryRetry);
      for (const r of registered) {
        out.log(`  ${contract.subject} v${r.version}: registry version ${r.registryVersion ?? '?'}, id ${r.id} (${r.file})`);
        count++;
      }
    } catch (error) {
      if (error instanceof SchemaIncompatibleError) {
        out.error(`sluice: ${error.message}`);
        return EXIT_INCOMPATIBLE;
      }
      if (error instanceof SluiceError) {
        out.error(`sluice: ${error.message}`);
        return EXIT_REGISTRY_UNAVAILABLE;
      }
      throw error;
    }
  }
  out.log(`schemas register: ${count} version${count === 1 ? '' : 's'} of ${reports.length} contract${reports.length === 1 ? '' : 's'} in place`);
  return EXIT_OK;
}

function registryTarget(c: Command, url: string | undefined): RegistryTarget {
  const settings = cliSettings(c);
  return { url: url ?? settings.registry.url, auth: { username: settings.registry.username, password: settings.registry.password } };
}

export function schemasCommand(): Command {
  const cmd = new Command('schemas').description('Avro contracts under schemas/: the evolution gate and registration');
  cmd
    .command('check')
    .description(
      'check each contract\'s current version against all its earlier schemas (lower vN.avsc files and their git history) ' +
        'under contract.yaml\'s level; offline by default, --online also asks the registry. Exit 0 compatible, 1 incompatible, 2 registry unavailable',
    )
    .option('-d, --dir <dir>', 'schemas folder', SCHEMAS_DIR)
    .option('--online', 'also ask the registry (SLUICE_SCHEMA_REGISTRY_URL, or --registry) under the subject\'s level there')
    .option('--registry <url>', 'registry base URL for the online check (implies --online)')
    .option('--no-history', 'compare with the vN.avsc files only, not with their committed contents in git')
    .action(async (opts: { dir: string; online?: boolean; registry?: string; history: boolean }, c: Command) => {
      const online = opts.online === true || opts.registry !== undefined;
      process.exitCode = await runSchemasCheck({
        dir: opts.dir,
        history: opts.history,
        registry: online ? registryTarget(c, opts.registry) : undefined,
      });
    });
  cmd
    .command('register')
    .description('register every version v1..vN in order under each subject, setting contract.yaml\'s level first; idempotent (same ids again)')
    .option('-d, --dir <dir>', 'schemas folder', SCHEMAS_DIR)
    .option('--registry <url>', 'registry base URL (default: SLUICE_SCHEMA_REGISTRY_URL)')
    .action(async (opts: { dir: string; registry?: string }, c: Command) => {
      process.exitCode = await runSchemasRegister({ dir: opts.dir, registry: registryTarget(c, opts.registry) });
    });
  return cmd;
}
