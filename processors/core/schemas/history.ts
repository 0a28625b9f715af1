import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { relative, sep } from 'node:path';

/**
 * The committed contents of a file in the git history of the checkout it lives in
 * (`git log --format=%H -- path`, then `git show H:path`). A schema version edited in place
 * after it was committed has to stay compatible with what it was: those contents are the
 * "earlier versions" the registry may already hold.
 */

export interface CommittedContent {
  hash: string;
  /** Committer date, ISO 8601. */
  date: string;
  text: string;
}

export interface FileHistory {
  /** Oldest first; empty when the file was never committed or git history is unavailable. */
  contents: CommittedContent[];
  /** Why the history is missing or partial, for the report. */
  note?: string | undefined;
}

export interface GitRepo {
  root: string;
  shallow: boolean;
}

function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** The git checkout `dir` belongs to, or a note saying why there is none. */
export function findGitRepo(dir: string): GitRepo | { note: string } {
  try {
    const root = git(dir, ['rev-parse', '--show-toplevel']).trim();
    const shallow = git(dir, ['rev-parse', '--is-shallow-repository']).trim() === 'true';
    return { root: realpathSync(root), shallow };
  } catch (error) {
    const e = error as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') return { note: 'git is not installed: compared with the vN.avsc files only, not with their committed history' };
    return { note: `${dir} is not in a git repository: compared with the vN.avsc files only, not with their committed history` };
  }
}

/** Every committed content of `path` reachable from HEAD, oldest first (deletions skipped). */
export function committedContents(repo: GitRepo, path: string): FileHistory {
  const gitPath = relative(repo.root, realpathSync(path)).split(sep).join('/');
  let log: string;
  try {
    log = git(repo.root, ['log', '--format=%H%x09%cI', '--', gitPath]);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    // A repository without any commit yet has no history to compare with.
    if (/does not have any commits|bad default revision|unknown revision/i.test(stderr)) return { contents: [] };
    return { contents: [], note: `git log failed for ${gitPath}: ${stderr.trim().split('\n')[0] ?? (error as Error).message}` };
  }
  const contents: CommittedContent[] = [];
  for (const line of log.split('\n').filter(Boolean).reverse()) {
    const [hash, date] = line.split('\t') as [string, string];
    try {
      contents.push({ hash, date, text: git(repo.root, ['show', `${hash}:${gitPath}`]) });
    } catch {
      // The commit deleted the file: nothing to compare with.
    }
  }
  return {
    contents,
    note: repo.shallow ? `the git checkout is shallow: history of ${gitPath} may be incomplete (fetch with full depth in CI)` : undefined,
  };
}
