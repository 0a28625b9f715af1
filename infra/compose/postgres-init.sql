-- Runs once, on the first start of the compose Postgres: the registry's own database, and
-- the warehouse the `sql` output writes to (connectors/exports/warehouse*.yaml).
-- (The staging schema comes from infra/postgres/migrations through the migrate service.)
CREATE DATABASE apicurio;
CREATE DATABASE warehouse;
