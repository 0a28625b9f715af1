/**
 * Issue 15's month-long load: test/integration/lake-compaction.test.ts with a month of
 * 1,002,240 events (33,408 a day for 30 days, a twentieth of them late) instead of 2,880:
 * exported with the shipped lake.yaml, compacted, SIGKILLed five times while the export runs
 * and late events arrive, replayed, compacted again; every step exact (DuckDB EXCEPT ALL both
 * ways, every event_id once with its values, the month's report byte for byte the same).
 * SLUICE_COMPACT_TEST_PER_DAY overrides the size.
 */
process.env.SLUICE_COMPACT_TEST_PER_DAY ??= '33408';
await import('../integration/lake-compaction.test.js');
