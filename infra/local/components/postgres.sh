# shellcheck shell=bash
# PostgreSQL from Debian's packages: a cluster of the project's own (not the system's),
# wal_level=logical for Debezium, superuser $SLUICE_PG_USER, databases for the
# project, the schema registry and the warehouse (the `sql` output's target:
# $SLUICE_WAREHOUSE_DATABASE, a database of its own as a real warehouse would be),
# migrations from infra/postgres/migrations.

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$d" ] && [ -x "$d/postgres" ] || return 1
  printf '%s' "$d"
}

postgres_install() {
  pg_bindir >/dev/null || die "missing PostgreSQL server: apt-get install postgresql (Debian package)"
  require_cmd psql "install the PostgreSQL client: apt-get install postgresql-client"
  local data pw bin
  data="$(data_dir postgres)"
  [ -f "$data/PG_VERSION" ] && return 0
  bin="$(pg_bindir)"
  log "initialising a PostgreSQL cluster in $data"
  pw="$(state_dir config)/pg.pw"
  printf '%s\n' "$SLUICE_PG_PASSWORD" >"$pw"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$data" "$pw"; fi
  run_as_service_user "$bin/initdb" -D "$data" -U "$SLUICE_PG_USER" --pwfile="$pw" \
    --auth-local=trust --auth-host=scram-sha-256 --data-checksums -E UTF8 --locale=C.UTF-8 >>"$(log_file postgres)" 2>&1 ||
    die "initdb failed; see $(log_file postgres)"
  rm -f "$pw"
  cat >>"$data/postgresql.conf" <<EOF
# --- sluice local stack ---
listen_addresses = 'localhost'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_connections = 200
shared_buffers = 256MB
timezone = 'UTC'
log_timezone = 'UTC'
EOF
}

postgres_socket_dir() {
  local d; d="$(state_dir run)/pg"
  mkdir -p "$d"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$d"; fi
  printf '%s' "$d"
}

postgres_ports() { echo "$SLUICE_PG_PORT SLUICE_PG_PORT"; }

postgres_start() {
  start_daemon postgres "${SERVICE_USER_PREFIX[@]}" "$(pg_bindir)/postgres" -D "$(data_dir postgres)" \
    -p "$SLUICE_PG_PORT" -k "$(postgres_socket_dir)"
}

postgres_health() {
  "$(pg_bindir)/pg_isready" -q -h localhost -p "$SLUICE_PG_PORT" -t 2
}

# Fast shutdown: SIGTERM would wait for every client (Debezium, the registry) to leave.
postgres_stop() {
  local data; data="$(data_dir postgres)"
  if [ -f "$data/postmaster.pid" ]; then
    run_as_service_user "$(pg_bindir)/pg_ctl" -D "$data" stop -m fast -w -t 60 >/dev/null 2>&1 || true
  fi
  stop_daemon postgres 10
}

postgres_psql() {
  PGPASSWORD="$SLUICE_PG_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h localhost \
    -p "$SLUICE_PG_PORT" -U "$SLUICE_PG_USER" "$@"
}

postgres_after_start() {
  local db
  for db in "$SLUICE_PG_DATABASE" apicurio "$SLUICE_WAREHOUSE_DATABASE"; do
    if [ "$(postgres_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
      postgres_psql -d postgres -c "CREATE DATABASE \"$db\""
    fi
  done
  PGHOST=localhost PGPORT="$SLUICE_PG_PORT" PGUSER="$SLUICE_PG_USER" PGPASSWORD="$SLUICE_PG_PASSWORD" \
    PGDATABASE="$SLUICE_PG_DATABASE" "$SLUICE_ROOT/infra/postgres/migrate.sh"
}

postgres_url() {
  printf 'postgres://%s:%s@localhost:%s/%s' "$SLUICE_PG_USER" "$SLUICE_PG_PASSWORD" "$SLUICE_PG_PORT" "$SLUICE_PG_DATABASE"
}

postgres_describe() { printf 'postgres://%s@localhost:%s/%s (wal_level=logical, data: %s)' \
  "$SLUICE_PG_USER" "$SLUICE_PG_PORT" "$SLUICE_PG_DATABASE" "$SLUICE_STATE/data/postgres"; }

# The warehouse: the same server, its own database (export pipelines with a `sql` output).
warehouse_url() {
  printf 'postgres://%s:%s@localhost:%s/%s' "$SLUICE_PG_USER" "$SLUICE_PG_PASSWORD" "$SLUICE_PG_PORT" "$SLUICE_WAREHOUSE_DATABASE"
}

postgres_env() {
  echo "export SLUICE_DATABASE_URL=$(postgres_url)"
  echo "export SLUICE_WAREHOUSE_URL=$(warehouse_url)"
}
