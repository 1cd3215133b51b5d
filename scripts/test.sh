#!/usr/bin/env bash
# Install everything (with test tools), then run lint, type checks and the whole test suite.
# The suite runs on SQLite and on PostgreSQL: a throwaway PostgreSQL cluster (Debian's
# postgresql, installed by install.sh --dev) is started for the run and removed after it.
# SOCMON_TEST_PG_URL set beforehand uses that server instead. Under CI=true a PostgreSQL
# that cannot start fails the run; elsewhere the PostgreSQL tests are then skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy (kernel)" >&2
.venv/bin/mypy

in_ci() { case "${CI:-}" in 1 | true | TRUE | True | yes) return 0 ;; esac; return 1; }

pg_dir=""
pg_bin=""
as_pg() {  # root may not run initdb/postgres: run them as the postgres user (from /, a
  # directory it can read)
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
pg_stop() {
  if [ -n "$pg_dir" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
    pg_dir=""
  fi
}
pg_start() {  # a private cluster: Unix socket in its own directory, no TCP, no durability
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "test.sh: PostgreSQL server not found under /usr/lib/postgresql/" >&2; return 1
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "test.sh: no postgres user to run PostgreSQL as" >&2; return 1
  fi
  pg_dir=$(mktemp -d /tmp/socmon-pg.XXXXXX) || return 1
  [ "$(id -u)" -ne 0 ] || chown postgres: "$pg_dir"
  local port=5432  # only names the socket file inside $pg_dir: no clash with other servers
  as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --no-locale \
    --no-sync >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; return 1; }
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 -o \
    "-k $pg_dir -p $port -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$pg_dir/server.log" >&2; return 1; }
  as_pg "$pg_bin/createdb" -h "$pg_dir" -p "$port" -U postgres socmon_test || return 1
  export SOCMON_TEST_PG_URL="postgresql+psycopg://postgres@/socmon_test?host=$pg_dir&port=$port"
  echo "test.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') started for the tests ($pg_dir)" >&2
}

if [ -z "${SOCMON_TEST_PG_URL:-}" ]; then
  trap pg_stop EXIT
  trap 'exit 130' INT TERM
  if ! pg_start; then
    pg_stop
    if in_ci; then
      echo "test.sh: FAILED: PostgreSQL could not start; CI must run the suite on it" >&2
      exit 1
    fi
    echo "test.sh: WARNING: PostgreSQL could not start; the PostgreSQL tests are skipped" >&2
  fi
fi

echo "== pytest" >&2
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
exit "$status"
