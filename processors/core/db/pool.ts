import pg from 'pg';

/** A PostgreSQL pool whose bigint (int8) columns come back as bigint, never a lossy number. */
export function createPool(url: string, options: { max?: number; applicationName?: string } = {}): pg.Pool {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, (v: string) => BigInt(v));
  return new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'sluice',
    types,
    connectionTimeoutMillis: 5_000,
  });
}
