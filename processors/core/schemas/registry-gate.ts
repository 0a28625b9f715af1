import { registerWithLevel, type CompatibilityLevel, type RegistryRestClient } from '../registry/ccompat.js';
import { levelRule } from './compatibility.js';
import type { Contract } from './contracts.js';

/**
 * The online half of the gate: the registry's own verdict on a contract's current version
 * under the level its subject carries there, and registration of every version in order.
 */

export interface OnlineReport {
  contract: Contract;
  /** Versions the subject holds in the registry; undefined when the subject does not exist. */
  registryVersions: number[] | undefined;
  /** The level the registry applies to the subject (Apicurio: the global one when it has none). */
  registryLevel: CompatibilityLevel | undefined;
  /** Set when the registry's level is not contract.yaml's. */
  levelMismatch?: string | undefined;
  /** The current version's place in the registry, when it is already registered. */
  registered?: { version: number; id: number } | undefined;
  compatible: boolean;
  /** Why, in one line, for the report. */
  detail: string;
}

/** Asks the registry whether the contract's current version may be registered under its subject. */
export async function checkOnline(client: RegistryRestClient, contract: Contract): Promise<OnlineReport> {
  const current = contract.versions[contract.versions.length - 1]!;
  const registryVersions = await client.subjectVersions(contract.subject);
  if (registryVersions === undefined || registryVersions.length === 0) {
    return {
      contract,
      registryVersions,
      registryLevel: undefined,
      compatible: true,
      detail: `subject ${contract.subject} is not in the registry yet: nothing to check against (\`sluice schemas register\` creates it with level ${contract.compatibility})`,
    };
  }
  const registryLevel = await client.subjectLevel(contract.subject);
  const levelMismatch =
    registryLevel && registryLevel !== contract.compatibility
      ? `the registry checks subject ${contract.subject} under ${registryLevel}, contract.yaml says ${contract.compatibility} (\`sluice schemas register\` sets it)`
      : undefined;
  const registered = await client.lookup(contract.subject, current.text);
  if (registered) {
    return {
      contract,
      registryVersions,
      registryLevel,
      levelMismatch,
      registered,
      compatible: true,
      detail: `v${current.version} is registered as version ${registered.version} (id ${registered.id})`,
    };
  }
  const rule = registryLevel ? levelRule(registryLevel) : levelRule(contract.compatibility);
  const verdict = await client.checkCompatible(contract.subject, current.text, rule?.transitive ? 'all' : 'latest');
  const against = rule?.transitive ? `all ${registryVersions.length} registered versions` : `registered version ${Math.max(...registryVersions)}`;
  return {
    contract,
    registryVersions,
    registryLevel,
    levelMismatch,
    compatible: verdict.compatible,
    detail: verdict.compatible
      ? `v${current.version} is compatible with ${against} under ${registryLevel ?? 'the registry level'}`
      : `v${current.version} is rejected by the registry: incompatible with ${against} under ${registryLevel ?? 'the registry level'}` +
        (verdict.messages.length > 0 ? `: ${verdict.messages.join('; ')}` : ''),
  };
}

export interface RegisteredVersion {
  version: number;
  file: string;
  /** The subject's version number in the registry (undefined if the registry cannot say). */
  registryVersion: number | undefined;
  id: number;
}

/**
 * Registers v1..vN in order under the contract's subject, putting contract.yaml's level in
 * place first. Idempotent: a version already there keeps its version number and id.
 */
export async function registerContract(client: RegistryRestClient, contract: Contract): Promise<RegisteredVersion[]> {
  const out: RegisteredVersion[] = [];
  for (const v of contract.versions) {
    const id = await registerWithLevel(client, contract.subject, v.text, contract.compatibility);
    const found = await client.lookup(contract.subject, v.text);
    out.push({ version: v.version, file: v.file, id, registryVersion: found?.version });
  }
  return out;
}
