-- Runs once, on the first start of the compose Postgres: the registry's own database.
-- (The staging schema comes from infra/postgres/migrations through the migrate service.)
CREATE DATABASE apicurio;
