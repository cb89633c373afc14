#!/usr/bin/env bash
# Installs Debian's PgBouncer (package `pgbouncer`) with apt-get if it is missing, for the
# test of the PostgreSQL store behind a pooler in transaction mode
# (crates/taskyard/tests/store_pooler.rs), which starts its own PgBouncer on loopback.
# The package's own service is left stopped: the test needs only the program.
set -euo pipefail
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "setup-pgbouncer: installing pgbouncer with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
program="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
"$program" --version | head -1
echo "setup-pgbouncer: $program ready"
