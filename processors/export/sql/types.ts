import type { ColumnType } from '../outputs/s3.js';

/** The PostgreSQL type of each column type (the same column spec as the s3 output's). */
export const SQL_TYPES: Record<ColumnType, string> = {
  string: 'text',
  boolean: 'boolean',
  int32: 'integer',
  int64: 'bigint',
  float: 'real',
  double: 'double precision',
  timestamp_ms: 'timestamptz',
  timestamp_us: 'timestamptz',
  date: 'date',
  bytes: 'bytea',
};
