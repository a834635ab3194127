#!/usr/bin/env bash
# Make sure PostgreSQL >= 15 server binaries exist; install them with apt when missing.
set -euo pipefail
have_pg() {
  for d in ${PG_BINDIR:-} /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || continue
    v=$("$d/pg_ctl" --version | awk '{print $NF}' | cut -d. -f1)
    [ "${v:-0}" -ge 15 ] && return 0
  done
  return 1
}
have_pg && exit 0
echo "PostgreSQL >= 15 not found; installing it with apt-get" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# postgresql-common would create and start a system cluster; we only want the binaries.
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
  || $SUDO apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
have_pg || { echo "PostgreSQL install failed" >&2; exit 1; }
