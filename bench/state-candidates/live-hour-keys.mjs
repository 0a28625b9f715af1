/**
 * live's store access with hour-led event keys (processors/live/aggregate.ts): LMDB as
 * lmdb-store.ts opens it against SQLite as sqlite-store.ts does (pread, a bounded page cache),
 * 6 partition stores in one process, per 2,000-event transaction a point read of each event
 * key (1 % duplicates; 3 % of the events up to 36 h late) and of each agent-month's totals,
 * then one store transaction per partition. BENCHMARKS.md "Live: memory bounded".
 *   C=lmdb node bench/state-candidates/live-hour-keys.mjs [EVENTS=1000000]
 *   C=sqlite MULTI=1 node bench/state-candidates/live-hour-keys.mjs [EVENTS]   (multi-row INSERTs, as sqlite-store.ts)
 *   NOREAD=1: no read of the event keys (what an in-memory filter in front of them would leave)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
const N = Number(process.argv[2] ?? 1_000_000), AGENTS = 2000, BATCH = 2000, PARTS = 6;
const mem = (f) => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
let seed = 42; const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
const EMPTY = Buffer.alloc(8); const month = '2026-10';
const ids = [];
function event(i) {
  if (i > 1000 && rnd() < 0.01) return ids[Math.floor(rnd() * ids.length)];
  let hour = Math.floor(i / (N / 720)); if (rnd() < 0.03) hour = Math.max(0, hour - Math.floor(rnd() * 36));
  const e = { id: randomBytes(16).toString('base64url'), hour: hour.toString(16).padStart(6, '0'), agent: `agent-${Math.floor(rnd() ** 2 * AGENTS)}`, part: Math.floor(rnd() * PARTS), amount: BigInt(Math.floor(rnd() * 1e9)) };
  if (ids.length < 100_000) ids.push(e); else ids[i % 100_000] = e;
  return e;
}
const which = process.env.C ?? 'lmdb';
const dir = mkdtempSync(join(tmpdir(), 'live-hour-keys-'));
const stores = [];
for (let p = 0; p < PARTS; p++) {
  const d = join(dir, String(p)); mkdirSync(d, { recursive: true });
  if (which === 'lmdb') {
    const { open } = await import('lmdb');
    const root = open({ path: d, maxDbs: 4, noSync: true, compression: false, noReadAhead: true, mapSize: 32 * 1024 ** 3 });
    const db = root.openDB('data', { encoding: 'binary', keyEncoding: 'ordered-binary' });
    const unwritten = new Map(); let last = Promise.resolve();
    stores.push({ get: (k) => unwritten.get(k) ?? db.getBinaryFast(k), write: (pending) => { for (const [k, v] of pending) unwritten.set(k, v); last = root.batch(() => { for (const [k, v] of pending) db.put(k, v); }); void last.then(() => { for (const [k, v] of pending) if (unwritten.get(k) === v) unwritten.delete(k); }); }, flushed: () => last, close: () => root.close() });
  } else {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(d, 'state.db'));
    if (process.env.PAGE) db.pragma(`page_size = ${process.env.PAGE}`); db.pragma('journal_mode = WAL'); if (process.env.CKPT) db.pragma(`wal_autocheckpoint = ${process.env.CKPT}`); db.pragma('synchronous = OFF'); db.pragma(`cache_size = -${process.env.CACHE_KB ?? 4096}`); db.pragma('mmap_size = 0');
    db.exec('CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
    const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
    const get = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
    const R = 64; const many = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES ' + Array(R).fill('(?,?)').join(','));
    const args = new Array(2 * R);
    const write = db.transaction((pending) => { let n = 0; for (const [k, v] of pending) { if (process.env.MULTI) { args[n++] = k; args[n++] = v; if (n === 2 * R) { many.run(args); n = 0; } } else put.run(k, v); } for (let i = 0; i < n; i += 2) put.run(args[i], args[i + 1]); });
    stores.push({ get: (k) => get.get(k), write: (pending) => write(pending), flushed: async () => undefined, close: () => db.close() });
  }
}
const started = performance.now(); let peak = 0, counted = 0;
for (let i = 0; i < N; i += BATCH) {
  const pend = Array.from({ length: PARTS }, () => new Map());
  const totals = Array.from({ length: PARTS }, () => new Map());
  for (let j = i; j < Math.min(N, i + BATCH); j++) {
    const e = event(j); const s = stores[e.part]; const pending = pend[e.part];
    const k = `i\u0000${e.hour}${e.id}`;
    if (pending.has(k) || (!process.env.NOREAD && s.get(k) !== undefined)) continue;
    pending.set(k, EMPTY);
    const tk = `a\u0000${e.agent}\u0000${month}`;
    let t = totals[e.part].get(tk);
    if (!t) { const raw = s.get(tk); t = raw ? { n: Number(raw.toString('latin1').split(',')[0]) } : { n: 0 }; totals[e.part].set(tk, t); }
    t.n++; counted++;
  }
  for (let p = 0; p < PARTS; p++) { for (const [k, t] of totals[p]) pend[p].set(k, Buffer.from(`${t.n},0,0,0,0`, 'latin1')); stores[p].write(pend[p]); }
  await new Promise((r) => setImmediate(r));
  if (i % (BATCH * 25) === 0) peak = Math.max(peak, mem('VmRSS'));
}
for (const s of stores) await s.flushed();
const ms = performance.now() - started;
console.log(JSON.stringify({ which, N, counted, perSec: Math.round(N / ms * 1000), hwm: Math.round(mem('VmHWM')), anon: Math.round(mem('RssAnon')), file: Math.round(mem('RssFile')), disk: execSync(`du -sm ${dir}`).toString().split('\t')[0] }));
for (const s of stores) await s.close();
rmSync(dir, { recursive: true, force: true });
