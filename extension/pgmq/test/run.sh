#!/usr/bin/env bash
# Runs the pgmq extension's pg_regress suite and isolation specs against a
# running PostgreSQL cluster that already has the extension files installed
# (pgmq.control and pgmq--*.sql in $(pg_config --sharedir)/extension) and
# pg_partman available.
#
# Environment:
#   PGHOST, PGPORT, PGUSER  where to connect; PGUSER must be a superuser
#   PG_BINDIR               optional, directory with psql (default: pg_config --bindir)
#   PGMQ_TEST_OUT           optional, directory for results (default: a temp dir)
#
# Creates (and drops again on success) the databases pgmq_regress and
# pgmq_isolation, plus the scratch databases and roles the tests make.
# Exits non-zero on failure after printing regression.diffs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${PGHOST:?set PGHOST (socket directory or host)}"
: "${PGPORT:?set PGPORT}"
: "${PGUSER:?set PGUSER (a superuser)}"
export PGHOST PGPORT PGUSER

pg_config_bin=${PG_CONFIG:-pg_config}
if [[ -z "${PG_BINDIR:-}" ]]; then
  PG_BINDIR=$("$pg_config_bin" --bindir)
fi
pgxs_dir=$(dirname "$("$pg_config_bin" --pgxs)")/..
pg_regress="$pgxs_dir/test/regress/pg_regress"
pg_isolation_regress="$pgxs_dir/test/isolation/pg_isolation_regress"
for bin in "$pg_regress" "$pg_isolation_regress" "$PG_BINDIR/psql"; do
  if [[ ! -x "$bin" ]]; then
    echo "run.sh: $bin not found (install postgresql-server-dev-15)" >&2
    exit 2
  fi
done

out=${PGMQ_TEST_OUT:-$(mktemp -d -t pgmq-regress.XXXXXX)}
mkdir -p "$out/regress" "$out/isolation"

psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
fresh_db() {
  psql -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1 TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'"
}

status=0

fresh_db pgmq_regress
# pg_regress prints its own summary; --use-existing: the database above is used as is.
if ! "$pg_regress" \
    --use-existing \
    --bindir="$PG_BINDIR" \
    --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" \
    --dbname=pgmq_regress \
    --inputdir="$here" \
    --outputdir="$out/regress" \
    --schedule="$here/schedule"; then
  status=1
  echo "==== pg_regress failed: $out/regress/regression.diffs ====" >&2
  cat "$out/regress/regression.diffs" >&2 || true
fi

fresh_db pgmq_isolation
psql -d pgmq_isolation -c "CREATE EXTENSION pgmq"
if ! "$pg_isolation_regress" \
    --use-existing \
    --bindir="$PG_BINDIR" \
    --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" \
    --dbname=pgmq_isolation \
    --inputdir="$here/isolation" \
    --outputdir="$out/isolation" \
    --schedule="$here/isolation/schedule"; then
  status=1
  echo "==== pg_isolation_regress failed: $out/isolation/regression.diffs ====" >&2
  cat "$out/isolation/regression.diffs" >&2 || true
fi

if [[ $status -eq 0 ]]; then
  psql -c "DROP DATABASE IF EXISTS pgmq_regress WITH (FORCE)" -c "DROP DATABASE IF EXISTS pgmq_isolation WITH (FORCE)"
  if [[ -z "${PGMQ_TEST_OUT:-}" ]]; then rm -rf "$out"; fi
fi
exit $status
