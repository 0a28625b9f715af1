import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSchemasOffline } from '../../processors/core/schemas/check.js';
import { envelope, git, tempSchemasDir, writeSchema } from '../support/schema-dirs.js';

/** A temp git repo holding `schemas/ev/` with v1 committed. */
function repoWithV1(compatibility = 'BACKWARD_TRANSITIVE'): { root: string; schemas: string; dir: string; v1Commit: string } {
  const root = tempSchemasDir({});
  const schemas = join(root, 'schemas');
  tempSchemasDir({ ev: { compatibility, versions: [envelope()] } }, schemas);
  git(root, 'init', '-q');
  git(root, 'add', '.');
  git(root, 'commit', '-q', '-m', 'v1');
  return { root, schemas, dir: join(schemas, 'ev'), v1Commit: git(root, 'rev-parse', 'HEAD').trim() };
}

const required = { name: 'region', type: 'string' };
const optional = { name: 'region', type: ['null', 'string'], default: null };

describe('schema evolution gate: git history', () => {
  it('passes and compares with nothing earlier when v1 is unchanged since its commit', () => {
    const { schemas } = repoWithV1();
    const [report] = checkSchemasOffline(schemas);
    expect(report!.problems).toEqual([]);
    expect(report!.compared).toEqual([]);
    expect(report!.notes).toEqual([]);
  });

  it('fails a v1 edited in place incompatibly in the working tree, naming the committed content', () => {
    const { schemas, dir, v1Commit } = repoWithV1();
    writeSchema(dir, 1, envelope({ extraFields: [required] }));
    const [report] = checkSchemasOffline(schemas);
    const messages = report!.problems.flatMap((p) => p.messages);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(
      new RegExp(
        `^${join(dir, 'v1.avsc')}: field AgentEvent\\.region was added without a default: consumers using v1 cannot read events written with v1 as committed in ${v1Commit.slice(0, 7)} \\(\\d{4}-\\d\\d-\\d\\d\\) \\(BACKWARD_TRANSITIVE\\)$`,
      ),
    );
  });

  it('still fails once the incompatible edit is committed: the history keeps the old content', () => {
    const { root, schemas, dir, v1Commit } = repoWithV1();
    writeSchema(dir, 1, envelope({ extraFields: [required] }));
    git(root, 'commit', '-q', '-am', 'edit v1 in place');
    const [report] = checkSchemasOffline(schemas);
    expect(report!.problems.flatMap((p) => p.messages)).toEqual([expect.stringContaining(`events written with v1 as committed in ${v1Commit.slice(0, 7)}`)]);
  });

  it('passes a compatible in-place edit of v1 and reports what it was compared with', () => {
    const { schemas, dir, v1Commit } = repoWithV1();
    writeSchema(dir, 1, envelope({ extraFields: [optional] }));
    const [report] = checkSchemasOffline(schemas);
    expect(report!.problems).toEqual([]);
    expect(report!.compared).toEqual([expect.stringMatching(new RegExp(`^v1 as committed in ${v1Commit.slice(0, 7)}`))]);
  });

  it('checks v2 against the committed contents of v1 too, and an edited v1 against its own history', () => {
    const { root, schemas, dir, v1Commit } = repoWithV1();
    // v1 gains an optional field (compatible edit in place), committed; v2 then requires it.
    writeSchema(dir, 1, envelope({ extraFields: [optional] }));
    git(root, 'commit', '-q', '-am', 'v1: optional region');
    writeSchema(dir, 2, envelope({ extraFields: [{ name: 'region', type: ['null', 'string'] }] }));
    const [report] = checkSchemasOffline(schemas);
    const messages = report!.problems.flatMap((p) => p.messages);
    // v2 reads today's v1 (it has region) but not the v1 first committed.
    expect(messages).toEqual([
      expect.stringContaining(
        `v2.avsc: field AgentEvent.region was added without a default: consumers using v2 cannot read events written with v1 as committed in ${v1Commit.slice(0, 7)}`,
      ),
    ]);
    expect(report!.compared).toHaveLength(2);
    expect(report!.editedInPlace).toEqual([{ version: 1, compared: [expect.stringContaining(`v1 as committed in ${v1Commit.slice(0, 7)}`)] }]);
  });

  it('does not count whitespace-only edits as changes', () => {
    const { schemas, dir } = repoWithV1();
    writeFileSync(join(dir, 'v1.avsc'), JSON.stringify(envelope()));
    const [report] = checkSchemasOffline(schemas);
    expect(report!.compared).toEqual([]);
    expect(report!.historyContents).toBe(0);
  });

  it('under a non-transitive level compares an edited version with its latest committed content only', () => {
    const { root, schemas, dir } = repoWithV1('BACKWARD');
    writeSchema(dir, 1, envelope({ extraFields: [{ name: 'region', type: 'string', default: 'eu' }] }));
    git(root, 'commit', '-q', '-am', 'v1: region with a default');
    writeSchema(dir, 1, envelope({ extraFields: [{ name: 'region', type: 'string' }] })); // reads the last commit, not the first
    const [report] = checkSchemasOffline(schemas);
    expect(report!.problems).toEqual([]);
    expect(report!.compared).toHaveLength(1);
  });

  it('outside a git repository compares with the files only and says so', () => {
    const schemas = tempSchemasDir({ ev: { versions: [envelope()] } });
    const [report] = checkSchemasOffline(schemas);
    expect(report!.problems).toEqual([]);
    expect(report!.notes).toEqual([expect.stringContaining('is not in a git repository: compared with the vN.avsc files only')]);
  });
});
