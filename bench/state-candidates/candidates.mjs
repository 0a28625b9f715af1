/**
 * The embedded stores measured for processors/core/state (BENCHMARKS.md, "State store
 * candidates"): the normalizer's dedupe workload, N event ids (36-character UUID keys,
 * a 12-byte value) written in transactions of 5,000 (one Kafka transaction's worth),
 * then point reads of present and absent keys, then the disk used.
 * Not part of `npm run bench` (it needs the losers installed):
 *   npm i --no-save lmdb better-sqlite3@12.11.1 classic-level
 *   node bench/state-candidates/candidates.mjs [N=1000000]
 */
import { randomUUID } from 'node:crypto';
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv[2] ?? 1_000_000);
const BATCH = 5000;
const READS = 200_000;
const keys = Array.from({ length: N }, () => randomUUID());
const absent = Array.from({ length: READS }, () => randomUUID());
const value = (i) => {
  const b = Buffer.alloc(12);
  b.writeBigUInt64BE(BigInt(Date.now() + i));
  b.writeUInt32BE(i, 8);
  return b;
};
const du = (dir) => Number(execSync(`du -sk ${dir}`).toString().split(/\s/)[0]) * 1024;
const rate = (n, ms) => Math.round(n / (ms / 1000));

async function measure(name, open) {
  const dir = mkdtempSync(join(tmpdir(), `state-${name}-`));
  const db = await open(dir);
  let t = performance.now();
  for (let i = 0; i < N; i += BATCH) await db.writeBatch(keys.slice(i, i + BATCH).map((k, j) => [k, value(i + j)]));
  const putMs = performance.now() - t;
  t = performance.now();
  let hits = 0;
  for (let i = 0; i < READS; i++) if ((await db.get(keys[(i * 7919) % N])) !== undefined) hits++;
  const getHitMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < READS; i++) if ((await db.get(absent[i])) !== undefined) hits = -1;
  const getMissMs = performance.now() - t;
  await db.close();
  const bytes = du(dir);
  rmSync(dir, { recursive: true, force: true });
  if (hits !== READS) throw new Error(`${name}: ${hits} hits of ${READS}`);
  const row = { store: name, keys: N, batchPutPerSec: rate(N, putMs), getHitPerSec: rate(READS, getHitMs), getMissPerSec: rate(READS, getMissMs), diskMiBPerMillion: Math.round((bytes / 2 ** 20) * (1e6 / N) * 10) / 10 };
  console.log(JSON.stringify(row));
}

const which = (process.env.CANDIDATES ?? 'lmdb,better-sqlite3,classic-level').split(',');
if (which.includes('lmdb')) {
  const { open } = await import('lmdb');
  await measure('lmdb', (path) => {
    const db = open({ path, keyEncoding: 'ordered-binary', encoding: 'binary' });
    return {
      writeBatch: (pairs) => db.transaction(() => { for (const [k, v] of pairs) db.put(k, v); }),
      get: (k) => db.get(k),
      close: () => db.close(),
    };
  });
}
if (which.includes('better-sqlite3')) {
  const { default: Database } = await import('better-sqlite3');
  await measure('better-sqlite3', (dir) => {
    const db = new Database(join(dir, 'state.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID');
    const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
    const get = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
    const batch = db.transaction((pairs) => { for (const [k, v] of pairs) put.run(k, v); });
    return { writeBatch: (pairs) => batch(pairs), get: (k) => get.get(k), close: () => { db.pragma('wal_checkpoint(TRUNCATE)'); db.close(); } };
  });
}
if (which.includes('classic-level')) {
  const { ClassicLevel } = await import('classic-level');
  await measure('classic-level', async (dir) => {
    const db = new ClassicLevel(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    return {
      writeBatch: (pairs) => db.batch(pairs.map(([key, value]) => ({ type: 'put', key, value }))),
      get: (k) => db.get(k),
      close: () => db.close(),
    };
  });
}
