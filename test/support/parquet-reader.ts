import { DuckDBInstance, type DuckDBConnection, type Json } from '@duckdb/node-api';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * An independent Parquet reader for tests: DuckDB (its own C++ Parquet reader, not the
 * arrow-rs writer under test). Files are written to a temporary folder; query results come
 * back as JSON-safe values (BIGINT and HUGEINT as exact strings), with the session in UTC.
 */
export class ParquetReader {
  private files = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly dir: string,
  ) {}

  static async open(): Promise<ParquetReader> {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(`SET TimeZone = 'UTC'`);
    return new ParquetReader(instance, connection, mkdtempSync(join(tmpdir(), 'sluice-parquet-test-')));
  }

  /** Stores the bytes as a file and returns the `read_parquet('...')` expression for it. */
  table(bytes: Uint8Array): string {
    const path = join(this.dir, `file-${++this.files}.parquet`);
    writeFileSync(path, bytes);
    return `read_parquet('${path}')`;
  }

  /** The path of the last file table() stored (for parquet_schema(), parquet_metadata(), ...). */
  get lastPath(): string {
    return join(this.dir, `file-${this.files}.parquet`);
  }

  async query(sql: string): Promise<Record<string, Json>[]> {
    return (await this.connection.runAndReadAll(sql)).getRowObjectsJson();
  }

  /** Column name -> DuckDB type, as DuckDB reads the file. */
  async columnTypes(bytes: Uint8Array): Promise<Record<string, string>> {
    const rows = await this.query(`DESCRIBE SELECT * FROM ${this.table(bytes)}`);
    return Object.fromEntries(rows.map((r) => [String(r.column_name), String(r.column_type)]));
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
