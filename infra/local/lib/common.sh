# shellcheck shell=bash
# Shared helpers for the local stack: paths, ports, process supervision, health waits
# and cached Maven downloads. Sourced by infra/local/stack and every component file.
# A component file defines, for its NAME: NAME_install, NAME_start, NAME_health,
# NAME_stop (optional: the default stops the pid file), NAME_ports and NAME_describe.

set -euo pipefail

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
SLUICE_STATE="${SLUICE_STATE_DIR:-$SLUICE_ROOT/.sluice}"
SLUICE_CACHE="${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
LOCAL_DIR="$SLUICE_ROOT/infra/local"

# Ports and credentials. The same names are used by docker-compose.yml and by the
# processors' config (processors/core/config), so one set of env vars drives all three.
: "${SLUICE_PG_PORT:=5432}"
: "${SLUICE_PG_USER:=sluice}"
: "${SLUICE_PG_PASSWORD:=sluice}"
: "${SLUICE_PG_DATABASE:=sluice}"
: "${SLUICE_WAREHOUSE_DATABASE:=warehouse}"
: "${SLUICE_KAFKA_PORT:=9092}"
: "${SLUICE_KAFKA_CONTROLLER_PORT:=9093}"
: "${SLUICE_REGISTRY_PORT:=8081}"
: "${SLUICE_CONNECT_PORT:=8083}"
: "${SLUICE_S3_PORT:=9000}"
: "${SLUICE_S3_BUCKET:=sluice-lake}"
: "${AWS_ACCESS_KEY_ID:=sluice}"
: "${AWS_SECRET_ACCESS_KEY:=sluice-secret-key}"
: "${AWS_REGION:=us-east-1}"
export SLUICE_PG_PORT SLUICE_PG_USER SLUICE_PG_PASSWORD SLUICE_PG_DATABASE SLUICE_WAREHOUSE_DATABASE SLUICE_KAFKA_PORT \
  SLUICE_KAFKA_CONTROLLER_PORT SLUICE_REGISTRY_PORT SLUICE_CONNECT_PORT SLUICE_S3_PORT \
  SLUICE_S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'sluice stack: %s\n' "$*" >&2; exit 1; }

state_dir() { mkdir -p "$SLUICE_STATE/$1" && printf '%s' "$SLUICE_STATE/$1"; }
log_file() { printf '%s/%s.log' "$(state_dir logs)" "$1"; }
pid_file() { printf '%s/%s.pid' "$(state_dir run)" "$1"; }
data_dir() { state_dir "data/$1"; }
cache_dir() { mkdir -p "$SLUICE_CACHE/$1" && printf '%s' "$SLUICE_CACHE/$1"; }

# require_cmd CMD FIX: one clear line naming the fix when a prerequisite is missing.
require_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "missing prerequisite '$1': $2"
}

# java_home_for MIN_MAJOR: prints a JAVA_HOME whose major version is >= MIN_MAJOR,
# preferring JAVA_HOME, then the system java, then any JDK under /usr/lib/jvm.
java_home_for() {
  local min="$1" cand major
  for cand in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")" /usr/lib/jvm/*; do
    [ -n "$cand" ] && [ -x "$cand/bin/java" ] || continue
    major="$("$cand/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
    major="${major#1.}"
    if [ -n "$major" ] && [ "$major" -ge "$min" ]; then printf '%s' "$cand"; return 0; fi
  done
  return 1
}

# port_owner PORT: prints "pid command" of the listener on PORT, empty when free.
port_owner() {
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$port" 2>/dev/null | sed -nE 's/.*users:\(\("([^"]+)",pid=([0-9]+).*/\2 \1/p' | head -1
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && echo "unknown"
  fi
  return 0
}

# ensure_port_free NAME PORT ENVVAR: dies with the fix when another process holds it.
ensure_port_free() {
  local name="$1" port="$2" var="$3" owner
  owner="$(port_owner "$port")"
  [ -z "$owner" ] && return 0
  die "port $port needed by $name is taken (${owner:-another process}); stop that process or set $var to a free port"
}

is_running() {
  local pf pid; pf="$(pid_file "$1")"
  [ -f "$pf" ] || return 1
  pid="$(cat "$pf")"
  kill -0 "$pid" 2>/dev/null || return 1
  # A killed daemon stays a zombie until init reaps it; that is not "running".
  [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

# start_daemon NAME CMD...: runs CMD detached in its own session, output to the log.
start_daemon() {
  local name="$1"; shift
  local lf; lf="$(log_file "$name")"
  printf '\n===== %s starting %s =====\n' "$(date -u +%FT%TZ)" "$name" >>"$lf"
  setsid nohup "$@" >>"$lf" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

# stop_daemon NAME [TIMEOUT_S]: SIGTERM the process group, SIGKILL after the timeout.
stop_daemon() {
  local name="$1" timeout="${2:-30}" pf pid i
  pf="$(pid_file "$name")"
  [ -f "$pf" ] || return 0
  pid="$(cat "$pf")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 4; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in ${timeout}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pf"
}

# kill_daemon NAME: SIGKILL the process group at once and wait until it is gone (a crash).
kill_daemon() {
  local name="$1" pf pid i
  pf="$(pid_file "$name")"
  [ -f "$pf" ] || return 0
  pid="$(cat "$pf")"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    is_running "$name" || break
    sleep 0.25
  done
  is_running "$name" && die "$name (pid $pid) still running after SIGKILL"
  rm -f "$pf"
}

# wait_healthy NAME TIMEOUT_S: polls NAME_health until it passes; fails fast, with the
# log's tail, when the process dies.
wait_healthy() {
  local name="$1" timeout="$2" start now
  start="$(date +%s)"
  while ! "${name}_health" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      tail -n 30 "$(log_file "$name")" >&2 || true
      die "$name exited during start-up; full log: $(log_file "$name")"
    fi
    now="$(date +%s)"
    if ((now - start > timeout)); then
      tail -n 30 "$(log_file "$name")" >&2 || true
      die "$name not healthy after ${timeout}s; full log: $(log_file "$name")"
    fi
    sleep 1
  done
}

http_ok() { curl -fsS -o /dev/null -m 3 "$1"; }

# maven_classpath COMPONENT: resolves infra/local/maven/COMPONENT/pom.xml's runtime
# dependencies into the download cache once (keyed by the pom's hash) and prints the
# folder holding the jars. Maven's own ~/.m2 makes re-resolution cheap too.
maven_classpath() {
  local comp="$1" pom hash dest
  pom="$LOCAL_DIR/maven/$comp/pom.xml"
  [ -f "$pom" ] || die "no Maven descriptor for $comp at $pom"
  hash="$(sha256sum "$pom" | cut -c1-12)"
  dest="$(cache_dir "jars")/$comp-$hash"
  if [ ! -f "$dest/.complete" ]; then
    require_cmd mvn "install Maven: apt-get install maven"
    log "downloading $comp jars from Maven Central (cached in $dest)"
    rm -rf "$dest.tmp"
    mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$dest.tmp" >&2 || die "Maven could not resolve $comp's jars (see output above)"
    rm -rf "$dest" && mv "$dest.tmp" "$dest" && touch "$dest/.complete"
  fi
  printf '%s' "$dest"
}

# download URL DEST: cached plain download (for artifacts Maven publishes as archives).
download() {
  local url="$1" dest="$2"
  [ -s "$dest" ] && return 0
  log "downloading $(basename "$dest")"
  curl -fSL --retry 3 -o "$dest.tmp" "$url" || die "download failed: $url"
  mv "$dest.tmp" "$dest"
}

# PostgreSQL refuses to run as root: as root, commands run as the service user.
SERVICE_USER_PREFIX=()
if [ "$(id -u)" = 0 ]; then SERVICE_USER_PREFIX=(runuser -u "${SLUICE_SERVICE_USER:-postgres}" --); fi
run_as_service_user() { "${SERVICE_USER_PREFIX[@]}" "$@"; }
