#!/bin/bash
# Initialise the cluster on first start, then run PostgreSQL in the foreground as postgres.
# The superuser password comes from a mounted secret file (root-only), never from the
# environment; root reads it once for initdb and the copy is removed at once.
set -euo pipefail

password_file="${POSTGRES_PASSWORD_FILE:-/run/secrets/postgres_password}"
as_postgres() { runuser -u postgres -- "$@"; }

install -d -o postgres -g postgres -m 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ ! -s "$password_file" ]; then
    echo "target-postgres: no password file at $password_file; mount one (POSTGRES_PASSWORD_FILE)" >&2
    exit 2
  fi
  pwcopy="$(mktemp /run/initdb-pw.XXXXXX)"
  trap 'rm -f "$pwcopy"' EXIT
  cat "$password_file" >"$pwcopy"
  chown postgres "$pwcopy"
  as_postgres initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 --pwfile="$pwcopy" >/dev/null
  rm -f "$pwcopy"
  cat >>"$PGDATA/postgresql.conf" <<'CONF'
listen_addresses = '*'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_logical_replication_workers = 8
max_sync_workers_per_subscription = 4
max_worker_processes = 16
shared_buffers = 256MB
CONF
  cat >>"$PGDATA/pg_hba.conf" <<'HBA'
host all all all scram-sha-256
host replication all all scram-sha-256
HBA
  echo "target-postgres: initialised $PGDATA"
fi

exec runuser -u postgres -- postgres -D "$PGDATA" "$@"
