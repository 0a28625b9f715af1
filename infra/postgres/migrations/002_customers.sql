-- Who a customer's assigned agent is. The ingest API credits an event that names no
-- agent_id to this agent, at ingest time: a later reassignment does not move events
-- already stored (rows in staging.agent_events are immutable facts).
-- Debezium does not stream this table (its publication lists staging.agent_events only).
CREATE TABLE staging.customers (
  customer_id text        PRIMARY KEY CHECK (customer_id <> ''),
  agent_id    text        NOT NULL CHECK (agent_id <> ''),
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- Last change of the assignment (an unchanged re-assignment keeps it).
  updated_at  timestamptz NOT NULL DEFAULT now()
);
