#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster in a temporary directory, installs
# mqstack's pgmq extension files into $(pg_config --sharedir)/extension
# (never over a real pgmq), runs the benchmark against it and stops and
# removes the cluster again. Extra arguments go to the bench program, e.g.
#   extension/pgmq/bench/run.sh -duration 1s -conns 1,8
#
# Environment: PG_CONFIG (default: pg_config on PATH, else the newest
# /usr/lib/postgresql/1[4-7]/bin/pg_config), GO (default: go on PATH or
# /usr/local/go/bin/go), BENCH_PORT (socket port number, default 55433).
# The cluster is durable like production (fsync and synchronous_commit on).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || ls -d /usr/lib/postgresql/1[4-7]/bin/pg_config 2>/dev/null | tail -n1)}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
port=${BENCH_PORT:-55433}
bindir=$("$PG_CONFIG" --bindir)
share=$("$PG_CONFIG" --sharedir)

tmp=$(mktemp -d -t pgmq-bench.XXXXXX)
chmod 755 "$tmp"
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$tmp"
  as_pg=(runuser -u postgres --)
fi
data=$tmp/data
sock=$tmp/sock

cleanup() {
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# build first, so that a compile error does not leave a cluster behind
(cd "$repo" && "$GO" build -o "$tmp/pgmq-bench" ./extension/pgmq/bench)

"${as_pg[@]}" mkdir -p "$sock"
"${as_pg[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; exit 1; }
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$sock'
max_connections = 100
shared_buffers = 256MB
random_page_cost = 1.1
CONF
"${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$tmp/postgres.log" -w start >/dev/null \
  || { cat "$tmp/postgres.log" >&2; exit 1; }

"$tmp/pgmq-bench" -install "$share" -dsn "host=$sock port=$port user=postgres dbname=postgres sslmode=disable" "$@"
