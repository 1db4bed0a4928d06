#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on loopback for the tests of the PostgreSQL state store.
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # prints the export lines; needs root or postgres
#   cargo test -p scimsync-store-pg
#   scripts/pg-test-cluster.sh stop "$SCIMSYNC_PG_CLUSTER_DIR"
#
# `start` makes a temp dir, runs initdb (trust auth, loopback only, no system service), starts
# the server on a free port and prints `export SCIMSYNC_TEST_POSTGRES_URL=…` and
# `export SCIMSYNC_PG_CLUSTER_DIR=…` on stdout. `stop DIR` stops it and removes DIR.
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail

bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  echo "pg-test-cluster: no initdb found (apt-get install -y postgresql)" >&2
  return 1
}

# Run a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local bin dir port i
  bin="$(bin_dir)"
  dir="$(mktemp -d /tmp/scimsync-pg.XXXXXX)"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  chmod 700 "$dir"
  as_owner "'$bin/initdb' -D '$dir/data' -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8" >"$dir/initdb.log" 2>&1 \
    || as_owner "'$bin/initdb' -D '$dir/data' -A trust -U postgres --no-sync -E UTF8 --locale=C" >"$dir/initdb.log" 2>&1 \
    || { echo "pg-test-cluster: initdb failed, see $dir/initdb.log" >&2; cat "$dir/initdb.log" >&2; return 1; }
  for i in 1 2 3 4 5; do
    port="$(free_port)"
    # fsync off: a throw-away cluster; max_connections covers parallel tests' pools.
    if as_owner "'$bin/pg_ctl' -D '$dir/data' -w -t 30 -l '$dir/log' -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start" >/dev/null 2>&1; then
      for i in $(seq 1 50); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        sleep 0.2
      done
      "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { echo "pg-test-cluster: server not ready, see $dir/log" >&2; return 1; }
      echo "export SCIMSYNC_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
      echo "export SCIMSYNC_PG_CLUSTER_DIR=$dir"
      return 0
    fi
  done
  echo "pg-test-cluster: the server did not start, see $dir/log" >&2
  cat "$dir/log" >&2 || true
  return 1
}

stop() {
  local dir="${1:-${SCIMSYNC_PG_CLUSTER_DIR:-}}" bin
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "pg-test-cluster: stop needs the cluster dir" >&2; return 1; }
  case "$dir" in /tmp/scimsync-pg.*) ;; *) echo "pg-test-cluster: refusing to remove $dir" >&2; return 1 ;; esac
  bin="$(bin_dir)"
  as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
