#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to run tally (Debian's
# clickhouse-server) and, with --test, to test it (the chDB npm package that
# checks tally's SQL on current ClickHouse, and chromium for the dashboard's
# browser tests). Safe to run again: it installs
# only what is missing. The tally binary itself never installs anything.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

if ! command -v clickhouse-server >/dev/null 2>&1 && [ ! -x /usr/sbin/clickhouse-server ]; then
  echo "install-deps: installing Debian's clickhouse-server" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  # The package tries to start a service; without an init system that fails harmlessly.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null || {
    [ -x /usr/sbin/clickhouse-server ] || { echo "install-deps: apt-get install clickhouse-server failed" >&2; exit 1; }
  }
fi

if [ "${1:-}" = "--test" ]; then
  if [ ! -d scripts/chdb/node_modules/chdb ]; then
    command -v npm >/dev/null 2>&1 || { echo "install-deps: npm is needed for the chDB check (apt-get install -y npm)" >&2; exit 1; }
    echo "install-deps: installing chdb (current ClickHouse, embedded) for the SQL compatibility check" >&2
    npm install --prefix scripts/chdb --no-audit --no-fund --loglevel=error
  fi
  # The dashboard's browser tests (e2e/dashboard_test.go) drive Debian's chromium.
  if [ ! -x /usr/bin/chromium ]; then
    echo "install-deps: installing chromium for the dashboard browser tests" >&2
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
  fi
fi
