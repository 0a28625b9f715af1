#!/usr/bin/env bash
# Applies infra/postgres/migrations/*.sql in name order, each once, each in its own
# transaction, recording it in public.sluice_schema_migrations. Connection from the
# standard libpq env (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE). Used by the local
# stack and by docker-compose's migrate service, so both get the same schema.
set -euo pipefail
dir="${MIGRATIONS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/migrations}"
# Warnings and errors only: "relation ... already exists, skipping" on every start is noise.
psql_q() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -c "CREATE TABLE IF NOT EXISTS public.sluice_schema_migrations (
  version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
applied=0
for f in "$dir"/*.sql; do
  v="$(basename "$f" .sql)"
  done_already="$(psql_q -tAc "SELECT 1 FROM public.sluice_schema_migrations WHERE version = '$v'")"
  [ "$done_already" = 1 ] && continue
  echo "migrate: applying $v" >&2
  { cat "$f"; echo; echo "INSERT INTO public.sluice_schema_migrations (version) VALUES ('$v');"; } |
    psql_q --single-transaction -f - || { echo "migrate: $v failed; nothing of it was applied" >&2; exit 1; }
  applied=$((applied + 1))
done
echo "migrate: $applied applied, schema up to date" >&2
