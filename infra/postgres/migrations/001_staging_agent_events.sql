-- The CDC boundary of docs/domain.md: one immutable row per enriched event.
-- Debezium streams this table; event_id is the idempotency key everywhere downstream.
CREATE SCHEMA IF NOT EXISTS staging;

CREATE TABLE staging.agent_events (
  event_id       uuid        PRIMARY KEY,
  event_type     text        NOT NULL,
  agent_id       text        NOT NULL,
  customer_id    text,
  amount_minor   bigint,
  currency       char(3),
  occurred_at    timestamptz NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now(),
  source         text,
  session_id     text,
  correlation_id text,
  metadata       jsonb
);

-- Validation of event semantics happens downstream (the normalizer routes bad rows to the
-- DLQ with a reason code), so the table deliberately accepts rows docs/domain.md calls invalid.
-- The pruner deletes by age; this index keeps that cheap.
CREATE INDEX agent_events_received_at_idx ON staging.agent_events (received_at);

-- Debezium needs the old key on DELETE and the full old row on UPDATE to report
-- immutable_event_mutated with the original values.
ALTER TABLE staging.agent_events REPLICA IDENTITY FULL;
