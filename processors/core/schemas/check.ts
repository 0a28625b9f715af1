import type { CompatibilityLevel } from '../registry/ccompat.js';
import { checkAgainst, snapshotLabel, type CompatibilityProblem, type SchemaSnapshot } from './compatibility.js';
import { loadContracts, parseAvroSchema, type Contract, type SchemaVersion } from './contracts.js';
import { committedContents, findGitRepo, type CommittedContent } from './history.js';

/**
 * The offline gate: the current version of each contract (the highest vN.avsc) against every
 * earlier schema of it, which are the lower vN.avsc files and every content any vN.avsc file
 * had in the git history; and each lower vN.avsc that was edited in place against what it was
 * before. Compatibility is the contract's level (contract.yaml), decided by avsc.
 */

export interface ContractReport {
  contract: Contract;
  level: CompatibilityLevel;
  current: SchemaVersion;
  /** Labels of the schemas the current version was compared with (`v1`, `v1 as committed in ...`). */
  compared: string[];
  /** Lower versions edited in place, each with the labels of its committed contents it was compared with. */
  editedInPlace: Array<{ version: number; compared: string[] }>;
  /** How many committed contents of the contract's files the history added. */
  historyContents: number;
  problems: CompatibilityProblem[];
  /** Limits of the check (no git, shallow history, an unreadable committed content). */
  notes: string[];
}

/** Committed contents of each vN.avsc, keyed by N; `note` when history is unavailable. */
export interface ContractHistory {
  byVersion: Map<number, CommittedContent[]>;
  notes: string[];
}

/** Reads the git history of a contract's version files (nothing on disk is changed). */
export function readContractHistory(contract: Contract): ContractHistory {
  const repo = findGitRepo(contract.dir);
  if ('note' in repo) return { byVersion: new Map(), notes: [repo.note] };
  const byVersion = new Map<number, CommittedContent[]>();
  const notes = new Set<string>();
  for (const v of contract.versions) {
    const history = committedContents(repo, v.path);
    byVersion.set(v.version, history.contents);
    if (history.note) notes.add(history.note.replace(/history of \S+ may/, 'history may'));
  }
  return { byVersion, notes: [...notes] };
}

function canonical(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

interface Earlier {
  snapshot: SchemaSnapshot;
  /** Canonical JSON of its text, to tell contents apart whatever the whitespace. */
  key: string;
}

/** Pure: checks one contract given its committed history (empty map: files only). */
export function checkContract(contract: Contract, history: ContractHistory = { byVersion: new Map(), notes: [] }): ContractReport {
  const notes = [...history.notes];
  const level = contract.compatibility;
  const working = new Map<number, Earlier>();
  /** Distinct committed contents of each file, oldest first, other than its content now. */
  const committed = new Map<number, Earlier[]>();

  for (const v of contract.versions) {
    const key = canonical(v.text);
    working.set(v.version, { snapshot: { version: v.version, file: v.file, type: v.type }, key });
    const distinct = new Map<string, CommittedContent>();
    for (const c of history.byVersion.get(v.version) ?? []) {
      const k = canonical(c.text);
      if (k === key) continue;
      distinct.delete(k); // a content that came back counts at its latest commit
      distinct.set(k, c);
    }
    const list: Earlier[] = [];
    for (const [k, c] of distinct) {
      const parsed = parseAvroSchema(c.text);
      if ('error' in parsed) {
        notes.push(`skipped ${v.file} as committed in ${c.hash.slice(0, 7)}: it ${parsed.error}`);
        continue;
      }
      list.push({ snapshot: { version: v.version, file: v.file, commit: { hash: c.hash, date: c.date }, type: parsed.type }, key: k });
    }
    committed.set(v.version, list);
  }

  const currentVersion = contract.versions[contract.versions.length - 1]!;
  const current = working.get(currentVersion.version)!;

  // The current version against everything before it, oldest first: each lower version's
  // committed contents and then its file as it is now, then the current file's own committed
  // contents (the most recent schemas, so the one a non-transitive level compares with).
  const ordered: Earlier[] = [];
  for (const v of contract.versions.slice(0, -1)) ordered.push(...committed.get(v.version)!, working.get(v.version)!);
  ordered.push(...committed.get(currentVersion.version)!);
  const seen = new Set<string>([current.key]);
  const previous = ordered.filter((e) => !seen.has(e.key) && seen.add(e.key)).map((e) => e.snapshot);
  const main = checkAgainst(current.snapshot, previous, level);
  const problems: CompatibilityProblem[] = [...main.problems];

  // A lower version edited in place must stay compatible with what it was.
  const editedInPlace: ContractReport['editedInPlace'] = [];
  for (const v of contract.versions.slice(0, -1)) {
    const before = committed.get(v.version)!.map((e) => e.snapshot);
    if (before.length === 0) continue;
    const result = checkAgainst(working.get(v.version)!.snapshot, before, level);
    editedInPlace.push({ version: v.version, compared: result.compared.map(snapshotLabel) });
    problems.push(...result.problems);
  }

  if (level === 'NONE') notes.push('compatibility NONE: no check applies');
  return {
    contract,
    level,
    current: currentVersion,
    compared: main.compared.map(snapshotLabel),
    editedInPlace,
    historyContents: [...committed.values()].reduce((n, l) => n + l.length, 0),
    problems,
    notes,
  };
}

export interface OfflineCheckOptions {
  /** Compare with the git history of the files too (default true). */
  history?: boolean;
}

/** Loads every contract under `schemasDir` and checks each; throws SchemaContractError on a bad layout. */
export function checkSchemasOffline(schemasDir: string, options: OfflineCheckOptions = {}): ContractReport[] {
  return loadContracts(schemasDir).map((contract) =>
    checkContract(contract, options.history === false ? { byVersion: new Map(), notes: ['git history not consulted'] } : readContractHistory(contract)),
  );
}
