/**
 * The embedded stores measured for `sluice live`'s state (BENCHMARKS.md, "State store
 * candidates: the live aggregate workload"; issue 14): per Kafka transaction of 5,000
 * events, as processors/live/aggregate.ts does it,
 *   - the event id: a point read (is it counted?), a put when new (22-character key, the
 *     16-byte id in base64url; 1 % of the events are duplicates of earlier ones);
 *   - an onboarding (10 %): a point read and a put of `c\0agent\0month\0customer`;
 *   - the agent-month's totals: read, modified, written once per transaction;
 * reads synchronous inside the transaction, the transaction's writes as one store
 * transaction after it. Then the disk used and the memory of the process (each store
 * runs in a process of its own: `CANDIDATES=lmdb node ...`).
 * Not part of `npm run bench` (better-sqlite3 is not a dependency):
 *   npm i --no-save better-sqlite3@12.11.1
 *   CANDIDATES=lmdb node bench/state-candidates/live-aggregate.mjs [EVENTS=2000000] [AGENTS=2000]
 *   CANDIDATES=better-sqlite3 node bench/state-candidates/live-aggregate.mjs [EVENTS] [AGENTS]
 */
import { randomBytes } from 'node:crypto';
import { execSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv[2] ?? 2_000_000);
const AGENTS = Number(process.argv[3] ?? 2000);
const BATCH = 5000;
const du = (dir) => Number(execSync(`du -sk ${dir}`).toString().split(/\s/)[0]) * 1024;
const mem = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const EMPTY = Buffer.alloc(0);
const month = '2026-10';
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
const ids = [];

function event(i) {
  if (i > 1000 && rnd() < 0.01) return ids[Math.floor(rnd() * ids.length)]; // a duplicate
  const agent = `agent-${Math.floor(rnd() ** 2 * AGENTS)}`; // skewed
  const r = rnd();
  const e = { id: randomBytes(16).toString('base64url'), agent, type: r < 0.1 ? 'o' : r < 0.55 ? 'd' : r < 0.8 ? 'w' : 'i', customer: `cust-${Math.floor(rnd() * 50_000)}`, amount: BigInt(Math.floor(rnd() * 1e9)) };
  if (ids.length < 100_000) ids.push(e);
  else ids[i % 100_000] = e;
  return e;
}

async function measure(name, store) {
  let counted = 0;
  const started = performance.now();
  let peakRss = 0;
  for (let i = 0; i < N; i += BATCH) {
    const pending = new Map();
    const totals = new Map();
    const has = (k) => pending.has(k) || store.get(k) !== undefined;
    for (let j = i; j < Math.min(N, i + BATCH); j++) {
      const e = event(j);
      const idKey = `e\u0000${e.id}`;
      if (has(idKey)) continue;
      pending.set(idKey, EMPTY);
      const tk = `a\u0000${e.agent}\u0000${month}`;
      let t = totals.get(tk);
      if (!t) {
        const raw = pending.get(tk) ?? store.get(tk);
        const [n, c, d, w, inv] = raw ? raw.toString('latin1').split(',') : ['0', '0', '0', '0', '0'];
        totals.set(tk, (t = { n: Number(n), c: Number(c), d: BigInt(d), w: BigInt(w), i: BigInt(inv) }));
      }
      t.n++;
      if (e.type === 'o') {
        const ck = `c\u0000${e.agent}\u0000${month}\u0000${e.customer}`;
        if (!has(ck)) {
          pending.set(ck, EMPTY);
          t.c++;
        }
      } else if (e.type === 'd') t.d += e.amount;
      else if (e.type === 'w') t.w += e.amount;
      else t.i += e.amount;
      counted++;
    }
    for (const [k, t] of totals) pending.set(k, Buffer.from(`${t.n},${t.c},${t.d},${t.w},${t.i}`, 'latin1'));
    await store.write(pending);
    if (i % (BATCH * 20) === 0) peakRss = Math.max(peakRss, mem('VmRSS'));
  }
  await store.flushed();
  const ms = performance.now() - started;
  const row = {
    store: name,
    events: N,
    agents: AGENTS,
    counted,
    eventsPerSec: Math.round(N / (ms / 1000)),
    entries: store.count(),
    diskMiB: Math.round((du(store.dir) / 2 ** 20) * 10) / 10,
    peakRssMiB: Math.round(Math.max(peakRss, mem('VmHWM'))),
    rssAnonMiB: Math.round(mem('RssAnon')),
    rssFileMiB: Math.round(mem('RssFile')),
    load: loadavg().map((l) => l.toFixed(1)).join(' '),
  };
  await store.close();
  rmSync(store.dir, { recursive: true, force: true });
  console.log(JSON.stringify(row));
}

const which = (process.env.CANDIDATES ?? 'lmdb').split(',');
for (const name of which) {
  const dir = mkdtempSync(join(tmpdir(), `live-state-${name}-`));
  if (name === 'lmdb') {
    // As processors/core/state/partition-store.ts opens it.
    const { open } = await import('lmdb');
    const root = open({ path: dir, maxDbs: 4, noSync: true, compression: false });
    const db = root.openDB('data', { encoding: 'binary', keyEncoding: 'ordered-binary' });
    let last = Promise.resolve();
    // Written but not yet committed by LMDB's write thread: read first (StateStores' `unwritten`).
    const unwritten = new Map();
    await measure(name, {
      dir,
      get: (k) => unwritten.get(k) ?? db.getBinaryFast(k),
      // Queued to LMDB's write thread as one transaction, as StateStores.committed does.
      write: (pending) => {
        for (const [k, v] of pending) unwritten.set(k, v);
        last = root.batch(() => {
          for (const [k, v] of pending) db.put(k, v);
        });
        void last.then(() => {
          for (const [k, v] of pending) if (unwritten.get(k) === v) unwritten.delete(k);
        });
      },
      flushed: () => last,
      count: () => db.getStats().entryCount,
      close: () => root.close(),
    });
  } else if (name === 'better-sqlite3') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dir, 'state.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF'); // as LMDB's noSync: the changelog is the durable copy
    db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
    const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
    const get = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
    const write = db.transaction((pending) => {
      for (const [k, v] of pending) put.run(k, v);
    });
    await measure(name, {
      dir,
      get: (k) => get.get(k),
      write: (pending) => write(pending),
      flushed: async () => undefined,
      count: () => db.prepare('SELECT count(*) FROM kv').pluck().get(),
      close: () => {
        db.pragma('wal_checkpoint(TRUNCATE)');
        db.close();
      },
    });
  } else throw new Error(`unknown candidate ${name}`);
}
