#!/usr/bin/env bash
# Installs what mqstack needs on Debian: PostgreSQL 15 (server, client,
# pg_partman, server-dev for pg_regress) and any extra packages named as
# arguments. Runs `apt-get update` at most once, and only when something is
# missing. Exits non-zero with one clear line when it cannot.
set -euo pipefail

pkgs=(postgresql-15 postgresql-client-15 postgresql-15-partman postgresql-server-dev-15 "$@")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: this is not a Debian system with apt-get; install PostgreSQL 14-17 with pg_partman yourself (missing: ${missing[*]}) and set PG_BIN" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages ${missing[*]}; run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's postgresql package may start a cluster on 5432; mqstack runs its
# own and does not need it, but leaves it alone.
exit 0
