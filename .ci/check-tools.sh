# shellcheck shell=bash
# Sourced by .ci/run: the tools the checks of the compose file, the alert rules and the
# supported Node versions use. Each prints one line saying what it did or proved.

# CI proves the oldest Node.js that package.json "engines" allows: the machine's node must be it.
ci_check_node_version() {
  local oldest running
  oldest="$(node -p 'require("./package.json").engines.node.match(/>=\s*(\d+)/)[1]')"
  running="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$running" != "$oldest" ]; then
    echo "CI runs Node $(node --version), but the oldest Node that package.json engines (\"$(node -p 'require("./package.json").engines.node')\") allows is $oldest: CI must prove that one" >&2
    return 1
  fi
  echo "node: $(node --version), the oldest major package.json engines allows (\"$(node -p 'require("./package.json").engines.node')\")"
}

# promtool (checks infra/prometheus/alerts.yaml) from Debian's prometheus package, without
# installing the server package and its service: only the promtool binary is taken.
ci_install_promtool() {
  command -v promtool >/dev/null && { echo "promtool: $(promtool --version 2>&1 | head -1)"; return 0; }
  local tmp; tmp="$(mktemp -d)"
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb x) && install -m 755 "$tmp/x/usr/bin/promtool" /usr/local/bin/promtool; then
    echo "promtool: $(promtool --version 2>&1 | head -1) (from Debian's prometheus package)"
  else
    echo "promtool: could not be installed; the rule tests run their own parser checks only" >&2
  fi
  rm -rf "$tmp"
}

# Docker Compose v2+ (for `docker compose config` in test/integration/compose.test.ts).
# Debian bookworm packages only v1 (1.29), so v5.6.0 is built from the Go module proxy
# (about 5 minutes on a fresh machine, then cached in Go's module and build caches).
COMPOSE_VERSION=v5.6.0
ci_install_compose() {
  local plugin=/usr/local/lib/docker/cli-plugins/docker-compose
  if [ -x "$plugin" ] && "$plugin" version --short 2>/dev/null | grep -qx "${COMPOSE_VERSION#v}"; then
    echo "docker compose: $COMPOSE_VERSION (installed)"; return 0
  fi
  command -v go >/dev/null || { echo "docker compose: no Go toolchain to build it; the compose test checks the JSON schema only" >&2; return 0; }
  local tmp; tmp="$(mktemp -d)"
  mkdir -p "$(dirname "$plugin")"
  if (cd "$tmp" && go mod init sluice.local/compose >/dev/null 2>&1 &&
      printf '//go:build tools\npackage tools\n\nimport _ "github.com/docker/compose/v5/cmd"\n' >tools.go &&
      go get "github.com/docker/compose/v5/cmd@$COMPOSE_VERSION" >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1 &&
      go build -trimpath -ldflags "-w -X github.com/docker/compose/v5/internal.Version=${COMPOSE_VERSION#v}" -o "$plugin" github.com/docker/compose/v5/cmd); then
    ln -sf "$plugin" /usr/local/bin/docker-compose
    echo "docker compose: $("$plugin" version --short) (built from the Go module proxy)"
  else
    echo "docker compose: the build of $COMPOSE_VERSION failed; the compose test checks the JSON schema only" >&2
  fi
  rm -rf "$tmp"
}
