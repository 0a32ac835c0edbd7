# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A named restore point with the exact row counts of every table at that point.

Private to this collection. Counting rows takes time and the server keeps committing meanwhile, so
the counts are taken in snapshots that equal the restore point exactly: for a moment (milliseconds on
an ERP's tables) every table of every database is locked in SHARE mode, which lets readers on and
holds writers back, a snapshot of each database is exported, the restore point is written, and the
locks are released. The counts then run at leisure in transactions that imported those snapshots.
A restore to that point must bring back exactly these counts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import sql as _sql

_TABLES = (
    "SELECT n.nspname AS schema, c.relname AS name"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
    " ORDER BY 1, 2"
)


class RestorePointError(_pg.PgError):
    """The restore point could not be made; nothing was left locked."""


def _close_all(connections):
    for conn in connections:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing is best effort; the error that matters is already raised
            pass


def create(endpoint, databases, name, lock_timeout_ms=5000):
    """Write restore point `name` and return its LSN, its time, the seconds writers were held back
    and {database: {"schema.table": rows}} exact at that point."""
    tables = {}
    lockers = {}
    counters = {}
    try:
        for database in databases:
            conn = _pg.connect(endpoint.with_database(database), lock_timeout_ms=lock_timeout_ms)
            lockers[database] = conn
            # Each table as SQL names it (always quoted) and as the drill reports it (format('%I.%I')).
            tables[database] = [
                (
                    _sql.qualified(row["schema"], row["name"]),
                    _sql.quote_ident(row["schema"]) + "." + _sql.quote_ident(row["name"]),
                )
                for row in conn.execute(_TABLES).fetchall()
            ]
        held_from = time.time()
        snapshots = {}
        for database, conn in lockers.items():
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            if tables[database]:
                try:
                    conn.execute(
                        "LOCK TABLE %s IN SHARE MODE" % ", ".join(sql for sql, _name in tables[database])
                    )
                except _pg.psycopg.errors.LockNotAvailable:
                    raise RestorePointError(
                        "a writer kept a table of %s locked for more than %d ms, so no exact point could be "
                        "taken; nothing was written: run the drill again, or raise lock_timeout_ms"
                        % (database, lock_timeout_ms)
                    ) from None
            snapshots[database] = conn.execute("SELECT pg_export_snapshot() AS id").fetchone()["id"]
        point = (
            lockers[databases[0]]
            .execute(
                "SELECT pg_create_restore_point(%s)::text AS lsn,"
                " to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at,"
                " pg_walfile_name(pg_current_wal_lsn()) AS segment",
                (name,),
            )
            .fetchone()
        )
        for database in databases:
            conn = _pg.connect(endpoint.with_database(database), statement_timeout_ms=0)
            counters[database] = conn
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            conn.execute("SET TRANSACTION SNAPSHOT %s" % _sql.literal(snapshots[database]))
        for conn in lockers.values():
            conn.execute("COMMIT")
        held = time.time() - held_from
        counts = {}
        for database, conn in counters.items():
            counts[database] = {}
            for table, reported in tables[database]:
                counts[database][reported] = conn.execute(
                    "SELECT count(*) AS rows FROM %s" % table
                ).fetchone()["rows"]
            conn.execute("COMMIT")
        # The restore point's segment is archived now, not when it fills: a drill can reach it at once.
        lockers[databases[0]].execute("SELECT pg_switch_wal()")
        return {
            "lsn": point["lsn"],
            "time": point["at"],
            "segment": point["segment"],
            "writers_held_seconds": round(held, 3),
            "row_counts": counts,
        }
    except _pg.psycopg.Error as error:
        raise RestorePointError(_pg.query_failure_message(endpoint, "restore point", error)) from None
    finally:
        _close_all(list(lockers.values()) + list(counters.values()))


def wait_archived(endpoint, segment, timeout):
    """Wait until the archiver reports the segment (or a later one) archived; True when it did."""
    conn = _pg.connect(endpoint.with_database(endpoint.database or "postgres"))
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
            if row["last_archived_wal"] and row["last_archived_wal"][8:] >= segment[8:]:
                return True
            time.sleep(0.5)
        return False
    finally:
        conn.close()
