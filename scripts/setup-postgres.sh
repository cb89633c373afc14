#!/usr/bin/env bash
# Makes sure a PostgreSQL server is installed and running on 127.0.0.1:5432 with a `test`
# database that the current user can reach without a password. Installs it with apt-get
# when absent (run as root). Safe to run again.
set -euo pipefail

log() { printf 'setup-postgres: %s\n' "$*" >&2; }

ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "PostgreSQL not found; installing with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

if ! ready; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  conf=/etc/postgresql/$version/main
  # Local trust auth for tests; the server listens on loopback only.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { log "PostgreSQL did not become ready on 127.0.0.1:5432"; exit 1; }

user=$(id -un)
psql_admin() { psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
  psql_admin "CREATE ROLE \"$user\" SUPERUSER LOGIN"
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
  psql_admin "CREATE DATABASE test"
fi
log "PostgreSQL ready: postgres://$user@127.0.0.1:5432/test"
