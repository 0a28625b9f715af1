import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * PostgreSQL's bulk load, shared by every writer that loads rows as COPY text (the sql
 * output, the file drops): COPY ... FROM STDIN of text chunks, and a savepoint around a
 * step that the database may refuse without losing the rest of the open transaction.
 */

/** COPY `statement` (a `COPY ... FROM STDIN`) of the chunks, streamed as they come; the rows it stored. */
export async function copyIn(client: pg.ClientBase, statement: string, chunks: Iterable<string | Buffer>): Promise<number> {
  const stream = client.query(copyFrom(statement));
  await pipeline(Readable.from(chunks), stream);
  return stream.rowCount;
}

/**
 * Runs `fn` inside the open transaction under a savepoint: released when it succeeds
 * (undefined is returned), rolled back to and released when it fails with an error
 * `recoverable` accepts (that error is returned: the rest of the transaction goes on).
 * Any other error throws, and the transaction is lost: the caller rolls it back.
 */
export async function withSavepoint(client: pg.ClientBase, name: string, fn: () => Promise<unknown>, recoverable: (error: unknown) => boolean): Promise<unknown> {
  await client.query(`SAVEPOINT ${name}`);
  try {
    await fn();
  } catch (error) {
    if (!recoverable(error)) throw error;
    await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
    await client.query(`RELEASE SAVEPOINT ${name}`);
    return error;
  }
  await client.query(`RELEASE SAVEPOINT ${name}`);
  return undefined;
}

/** The SQLSTATE of a database error, or undefined. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
