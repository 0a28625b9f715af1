import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Temporary schemas folders for the evolution-gate tests: `<root>/<contract>/contract.yaml` + vN.avsc. */

export interface ContractFixture {
  subject?: string;
  topic?: string;
  compatibility?: string;
  /** Raw contract.yaml text; wins over subject/topic/compatibility. */
  yaml?: string;
  /** v1, v2, ... in order; objects are written as JSON, strings as they are. */
  versions: Array<object | string>;
}

export function tempSchemasDir(contracts: Record<string, ContractFixture>, root = mkdtempSync(join(tmpdir(), 'sluice-schemas-'))): string {
  for (const [name, c] of Object.entries(contracts)) writeContract(root, name, c);
  return root;
}

export function writeContract(root: string, name: string, c: ContractFixture): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const yaml =
    c.yaml ??
    [`subject: ${c.subject ?? `test.${name}-value`}`, `topic: ${c.topic ?? `test.${name}`}`, ...(c.compatibility ? [`compatibility: ${c.compatibility}`] : [])].join('\n') + '\n';
  writeFileSync(join(dir, 'contract.yaml'), yaml);
  c.versions.forEach((v, i) => writeSchema(dir, i + 1, v));
  return dir;
}

export function writeSchema(dir: string, version: number, schema: object | string): void {
  writeFileSync(join(dir, `v${version}.avsc`), typeof schema === 'string' ? schema : JSON.stringify(schema, null, 2) + '\n');
}

/** A small envelope shaped like the agent-event contract, to evolve in tests. */
export function envelope(options: { extraFields?: object[]; deposit?: object[]; branches?: object[] } = {}): object {
  const deposit = {
    type: 'record',
    name: 'DepositMade',
    fields: options.deposit ?? [
      { name: 'customer_id', type: 'string' },
      { name: 'amount_minor', type: 'long' },
      { name: 'currency', type: 'string' },
    ],
  };
  const withdrawal = {
    type: 'record',
    name: 'WithdrawalMade',
    fields: [
      { name: 'customer_id', type: 'string' },
      { name: 'amount_minor', type: 'long' },
    ],
  };
  return {
    type: 'record',
    name: 'AgentEvent',
    namespace: 'io.sluice.test',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'subject', type: 'string' },
      { name: 'data', type: options.branches ?? [deposit, withdrawal] },
      ...(options.extraFields ?? []),
    ],
  };
}

/** Runs git in `cwd` with a fixed identity, so commits work on any machine. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Sluice Test', '-c', 'user.email=test@sluice.invalid', '-c', 'commit.gpgsign=false', ...args], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
