import type pg from 'pg';
import { copyIn, sqlState, withSavepoint } from '../core/db/copy.js';
import type { DirectCopyGate } from '../core/db/direct-copy-gate.js';
import { escapeText } from '../export/sql/copy-text.js';
import type { StagedEvent } from '../ingest-api/enrichment.js';

/**
 * A file's batch of valid rows into staging.agent_events at COPY speed, still idempotent
 * by event_id. The rows are first COPied straight into the table, behind a savepoint: a
 * batch whose event_ids are all new (a file read for the first time, the common case)
 * costs one COPY, as PostgreSQL's own ceiling does. If one of them is stored already (an
 * earlier attempt, another file, the ingest API) the COPY fails with a unique violation
 * (or a deadlock with a writer sharing its keys), the savepoint undoes it, and the batch
 * goes the careful way: COPY into a session-local temporary table, then one INSERT ...
 * SELECT ... ON CONFLICT (event_id) DO NOTHING in event_id order. Both run inside the
 * caller's transaction (the one that also moves the ledger's row offset); the temporary
 * table empties itself at COMMIT or ROLLBACK. No per-row statement, no array parameters
 * to serialise: the rows travel as COPY text. A refused direct COPY is remembered for the
 * file (DirectCopyGate, as the sql output does per partition): a file that overlaps stored
 * events all along (the same rows dropped again with a change) does not pay a rolled-back
 * COPY on every batch.
 */

const LOAD_TABLE = 'pg_temp.sluice_file_rows';
const COLUMNS = 'event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source, session_id, correlation_id, metadata, received_at';
const SAVEPOINT = 'sluice_file_rows_direct';
/** A row stored already (23505), or a deadlock with a writer sharing event_ids (40P01): the batch takes the ON CONFLICT path. */
const TAKE_CAREFUL_PATH = new Set(['23505', '40P01']);
const takesCarefulPath = (error: unknown): boolean => TAKE_CAREFUL_PATH.has(sqlState(error) ?? '');
const NULL = '\\N';
/** COPY data is sent in chunks of this many bytes. */
const CHUNK_BYTES = 256 * 1024;

/** Once per connection (a session-local table; IF NOT EXISTS makes a pooled connection's second file cheap). */
export async function prepareLoadTable(client: pg.ClientBase): Promise<void> {
  await client.query(
    `CREATE TEMPORARY TABLE IF NOT EXISTS sluice_file_rows
       (event_id uuid NOT NULL, event_type text NOT NULL, agent_id text NOT NULL, customer_id text, amount_minor bigint, currency text,
        occurred_at timestamptz NOT NULL, source text, session_id text, correlation_id text, metadata jsonb, received_at timestamptz NOT NULL)
     ON COMMIT DELETE ROWS`,
  );
}

/**
 * Inserts the rows (COPY text lines of distinct event_ids, see copyLine; as text or UTF-8
 * bytes); returns how many were new (the others were stored before: an earlier attempt,
 * another file, the ingest API). Must run inside a transaction on a connection that ran
 * prepareLoadTable. `gate` (one per file) says whether this batch tries the direct COPY.
 */
export async function loadEvents(client: pg.ClientBase, copyText: readonly (string | Uint8Array)[], gate: { gate: DirectCopyGate; key: string }): Promise<number> {
  if (copyText.every((t) => t.length === 0)) return 0;
  if (gate.gate.shouldTry(gate.key)) {
    let stored = 0;
    const refused = await withSavepoint(client, SAVEPOINT, async () => {
      stored = await copyIn(client, `COPY staging.agent_events (${COLUMNS}) FROM STDIN`, chunks(copyText));
    }, takesCarefulPath);
    if (refused === undefined) {
      gate.gate.loaded(gate.key);
      return stored;
    }
    gate.gate.refused(gate.key);
  }
  await copyIn(client, `COPY ${LOAD_TABLE} (${COLUMNS}) FROM STDIN`, chunks(copyText));
  // In event_id order: two writers sharing events wait on each other's keys in the same
  // order instead of deadlocking (as the ingest API's insert does).
  const { rowCount } = await client.query(
    `INSERT INTO staging.agent_events (${COLUMNS})
     SELECT ${COLUMNS} FROM ${LOAD_TABLE} ORDER BY event_id
     ON CONFLICT (event_id) DO NOTHING`,
  );
  return rowCount ?? 0;
}

/** One event as a line of COPY text (without its newline), in the order of COLUMNS. */
export function copyLine(e: StagedEvent): string {
  return [
    e.eventId,
    escapeText(e.eventType),
    escapeText(e.agentId),
    escapeText(e.customerId),
    // As decimal text: exact for every 64-bit amount.
    e.amountMinor === null ? NULL : e.amountMinor.toString(),
    e.currency === null ? NULL : escapeText(e.currency),
    e.occurredAt,
    e.source === null ? NULL : escapeText(e.source),
    e.sessionId === null ? NULL : escapeText(e.sessionId),
    e.correlationId === null ? NULL : escapeText(e.correlationId),
    e.metadata === null ? NULL : escapeText(e.metadata),
    e.receivedAt,
  ].join('\t');
}

/** The text in pieces of about CHUNK_BYTES (bytes: views, not copies). */
function* chunks(copyText: readonly (string | Uint8Array)[]): Generator<Buffer> {
  for (const text of copyText) {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
    for (let from = 0; from < bytes.length; from += CHUNK_BYTES) yield bytes.subarray(from, Math.min(from + CHUNK_BYTES, bytes.length));
  }
}
