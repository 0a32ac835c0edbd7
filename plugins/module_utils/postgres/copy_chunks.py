# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy's data, private: tables cut into key ranges, each chunk copied (COPY binary, FREEZE for
whole big tables) under the slot's snapshot by parallel workers, progress kept per chunk."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import select
import threading
import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    large_objects as _large_objects,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_common import (
    COPY_BUFFER,
    FREEZE_MIN_BYTES,
    _all,
    _connect,
    _one,
    _set_state,
    qname,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    literal as quote_literal,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import quote_ident


def plan_chunks(tables, chunk_rows):
    """Split the copy into chunks, largest table first.

    tables: dicts schema, name, bytes, rows (exact or estimated), id_column (a single
    integer primary-key column or None), min_id, max_id (under the snapshot).
    A table with an integer key and more than chunk_rows rows is split into id ranges
    [lo, hi) of about chunk_rows rows each (by the id density); other tables are one chunk
    (lo = hi = None). Returns chunk dicts: schema, name, chunk, lo, hi, bytes, order.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    ordered = sorted(tables, key=lambda t: (-(t.get("bytes") or 0), t["schema"], t["name"]))
    chunks = []
    for table in ordered:
        rows = table.get("rows") or 0
        lo, hi = table.get("min_id"), table.get("max_id")
        if table.get("id_column") and lo is not None and hi is not None and rows > chunk_rows:
            span = hi - lo + 1
            parts = max(1, -(-rows // chunk_rows))
            width = max(1, -(-span // parts))
            start = lo
            number = 0
            while start <= hi:
                end = start + width
                chunks.append(
                    {
                        "schema": table["schema"],
                        "name": table["name"],
                        "chunk": number,
                        "lo": start,
                        "hi": end,
                        "bytes": (table.get("bytes") or 0) // parts,
                    }
                )
                number += 1
                start = end
            # The last range is open-ended, so nothing beyond max_id is missed.
            chunks[-1]["hi"] = None
        else:
            chunks.append(
                {
                    "schema": table["schema"],
                    "name": table["name"],
                    "chunk": 0,
                    "lo": None,
                    "hi": None,
                    "bytes": table.get("bytes") or 0,
                }
            )
    # Big chunks first across tables, so the slowest work starts early.
    chunks.sort(key=lambda c: (-(c["bytes"] or 0), c["schema"], c["name"], c["chunk"]))
    for order, chunk in enumerate(chunks):
        chunk["order"] = order
    return chunks


def chunk_predicate(id_column, lo, hi):
    """WHERE clause of one chunk ('' for a whole-table chunk)."""
    parts = []
    if lo is not None:
        parts.append("%s >= %d" % (quote_ident(id_column), int(lo)))
    if hi is not None:
        parts.append("%s < %d" % (quote_ident(id_column), int(hi)))
    return (" WHERE " + " AND ".join(parts)) if parts else ""


def copy_statements(schema, name, columns, id_column, lo, hi, freeze=True):
    """(source COPY TO, target COPY FROM, target cleanup) for one chunk, binary format.

    A whole-table chunk is copied by `COPY table TO` (no executor projection). With
    `freeze` it is written after a TRUNCATE in the same target transaction, so it can use
    COPY FREEZE: its rows land frozen and all-visible, and the index builds and checks that
    read them next do not dirty every page to set hint bits (a full-page WAL image each,
    with checksums). Without, the table is emptied by DELETE (cheaper for small tables: a
    TRUNCATE makes new files).
    """
    table = qname(schema, name)
    cols = ", ".join(quote_ident(c) for c in columns)
    where = chunk_predicate(id_column, lo, hi) if id_column else ""
    target = "COPY %s (%s) FROM STDIN (FORMAT binary)" % (table, cols)
    if where:
        source = "COPY (SELECT %s FROM ONLY %s%s) TO STDOUT (FORMAT binary)" % (cols, table, where)
        cleanup = "DELETE FROM ONLY %s%s" % (table, where)
    else:
        # COPY of a table name never reads its children, like ONLY.
        source = "COPY %s (%s) TO STDOUT (FORMAT binary)" % (table, cols)
        cleanup = "DELETE FROM ONLY %s" % table
        if freeze:
            target = "COPY %s (%s) FROM STDIN (FORMAT binary, FREEZE)" % (table, cols)
            cleanup = "TRUNCATE ONLY %s" % table
    return source, target, cleanup


def _wait_readable(pgconn):
    # select() releases the GIL while the other copy threads work.
    select.select([pgconn.socket], [], [])
    pgconn.consume_input()


def _next_result(pgconn):
    while pgconn.is_busy():
        _wait_readable(pgconn)
    return pgconn.get_result()


def _result_error(pgconn, result):
    text = (result.error_message if result is not None else pgconn.error_message) or b""
    return _pg.psycopg.OperationalError(text.decode("utf-8", "replace").strip() or "COPY failed")


def pump_copy(conn, sql, write, block=COPY_BUFFER):
    """Run `sql` (a COPY ... TO STDOUT) on conn and hand its data to write() in blocks of
    about `block` bytes; return the number of bytes.

    The server sends COPY TO data one row per message. psycopg's Copy iteration costs a
    generator round trip per row and writing each row on costs a send() per row; reading
    the messages straight from libpq and writing 1 MiB blocks cuts the controller's CPU to
    a third (measured: 3.0 -> 1.0 CPU-s for 668 MiB over 4 streams).
    """
    pgconn = conn.pgconn
    pgconn.send_query(sql.encode("utf-8"))
    result = _next_result(pgconn)
    if result is None or result.status != _pg.psycopg.pq.ExecStatus.COPY_OUT:
        while _next_result(pgconn) is not None:
            pass
        raise _result_error(pgconn, result)
    buffer = bytearray()
    moved = 0
    while True:
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes > 0:
            buffer += data
            if len(buffer) >= block:
                write(buffer)
                moved += len(buffer)
                buffer = bytearray()
        elif nbytes == 0:
            _wait_readable(pgconn)
        elif nbytes == -1:
            break
        else:
            raise _result_error(pgconn, None)
    if buffer:
        write(buffer)
        moved += len(buffer)
    result = _next_result(pgconn)
    failed = result is None or result.status != _pg.psycopg.pq.ExecStatus.COMMAND_OK
    while _next_result(pgconn) is not None:
        pass
    if failed:
        raise _result_error(pgconn, result)
    return moved


class ChunkCopy:
    """Steps of Migration (postgres/replication.py): this mixin uses its attributes."""

    # -- P2: copy ----------------------------------------------------------------------
    def copy_tables(self, src):
        """Tables to copy, with their columns and integer key (from the source catalog)."""
        rows = _all(
            src,
            "SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid)::bigint AS bytes, "
            "greatest(c.reltuples, 0)::bigint AS rows, "
            "(SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid "
            "  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns, "
            "(SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid "
            "   AND a.attnum = con.conkey[1] WHERE con.conrelid = c.oid AND con.contype = 'p' "
            "   AND array_length(con.conkey, 1) = 1 AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, "
            "   'int8'::regtype)) AS id_column "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND c.relpersistence = 'p' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' "
            "ORDER BY 1, 2",
        )
        return rows

    def _plan(self, snapshot):
        """Plan chunks under the snapshot and store them in copy_progress (once)."""
        src = _connect(self.source)
        try:
            src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            src.execute("SET TRANSACTION SNAPSHOT %s" % quote_literal(snapshot))
            tables = self.copy_tables(src)
            for table in tables:
                if table["id_column"] and table["rows"] > self.chunk_rows:
                    col = quote_ident(table["id_column"])
                    row = _one(
                        src,
                        "SELECT min(%s)::bigint AS lo, max(%s)::bigint AS hi, count(*)::bigint AS n "
                        "FROM ONLY %s" % (col, col, qname(table["schema"], table["name"])),
                    )
                    table["min_id"], table["max_id"], table["rows"] = row["lo"], row["hi"], row["n"]
            src.execute("ROLLBACK")
        finally:
            src.close()
        chunks = plan_chunks(tables, self.chunk_rows)
        id_columns = dict(((t["schema"], t["name"]), t["id_column"]) for t in tables)
        tgt = self._target_conn()
        try:
            with tgt.transaction():
                tgt.execute("DELETE FROM odoo_migration.copy_progress")
                with tgt.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO odoo_migration.copy_progress "
                        "(table_schema, table_name, chunk, lo, hi, id_column, ord, bytes) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        [
                            (
                                c["schema"],
                                c["name"],
                                c["chunk"],
                                c["lo"],
                                c["hi"],
                                id_columns[(c["schema"], c["name"])]
                                if c["lo"] is not None or c["hi"] is not None
                                else None,
                                c["order"],
                                c["bytes"],
                            )
                            for c in chunks
                        ],
                    )
                _set_state(tgt, "plan", "done")
        finally:
            tgt.close()
        return True, "%d chunk(s) over %d table(s)" % (len(chunks), len(tables))

    def _copy(self, snapshot):
        tgt = self._target_conn()
        try:
            pending = _all(
                tgt,
                "SELECT table_schema AS schema, table_name AS name, chunk, lo, hi, id_column, attempts, "
                "bytes FROM odoo_migration.copy_progress WHERE NOT done ORDER BY ord",
            )
            total = _one(tgt, "SELECT count(*)::int AS n FROM odoo_migration.copy_progress")["n"]
        finally:
            tgt.close()
        src = _connect(self.source)
        try:
            columns = dict(((t["schema"], t["name"]), t["columns"]) for t in self.copy_tables(src))
        finally:
            src.close()
        skipped = total - len(pending)
        stats = {
            "chunks": total,
            "chunks_skipped": skipped,
            "chunks_copied": 0,
            "rows": 0,
            "bytes": 0,
            "seconds": 0,
        }
        if not pending:
            return stats
        started = time.monotonic()
        queue = list(pending)
        lock = threading.Lock()
        errors = []

        def worker():
            s = _connect(self.source)
            t = _connect(self.target)
            try:
                # A chunk's rows and its copy_progress mark commit in one transaction, so an
                # asynchronous commit lost in a target crash loses both: the chunk is redone.
                # Later synchronous commits (the 'data' state) flush the WAL before them.
                t.execute("SET synchronous_commit = off")
                s.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                s.execute("SET TRANSACTION SNAPSHOT %s" % quote_literal(snapshot))
                while True:
                    with lock:
                        if not queue or errors:
                            return
                        chunk = queue.pop(0)
                    began = time.monotonic()
                    cols = columns[(chunk["schema"], chunk["name"])]
                    copy_out, copy_in, cleanup = copy_statements(
                        chunk["schema"],
                        chunk["name"],
                        cols,
                        chunk["id_column"],
                        chunk["lo"],
                        chunk["hi"],
                        freeze=(chunk["bytes"] or 0) >= FREEZE_MIN_BYTES,
                    )
                    rows = 0
                    size = 0
                    with t.transaction():
                        t.execute(cleanup)
                        into_cursor = t.cursor()
                        with into_cursor.copy(copy_in) as into:
                            size = pump_copy(s, copy_out, into.write)
                        rows = into_cursor.rowcount
                        t.execute(
                            "UPDATE odoo_migration.copy_progress SET done = true, rows = %s, seconds = %s, "
                            "attempts = attempts + 1, done_at = clock_timestamp() "
                            "WHERE table_schema = %s AND table_name = %s AND chunk = %s",
                            (rows, time.monotonic() - began, chunk["schema"], chunk["name"], chunk["chunk"]),
                        )
                    with lock:
                        stats["chunks_copied"] += 1
                        stats["rows"] += rows
                        stats["bytes"] += size
            except Exception as error:  # reported below, with the secrets removed
                with lock:
                    errors.append(_pg.error_text(error, self.secrets))
            finally:
                s.close()
                t.close()

        workers = min(self.jobs, len(pending))
        threads = [threading.Thread(target=worker, daemon=True) for _worker in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats["seconds"] = round(time.monotonic() - started, 3)
        stats["rows_per_second"] = int(stats["rows"] / stats["seconds"]) if stats["seconds"] else None
        self.result["copy"] = stats
        if errors:
            self._fail(
                "the copy failed (%d chunk(s) done are kept; re-run to resume): %s"
                % (stats["chunks_copied"], errors[0])
            )
        return stats

    def _copy_large_objects(self, snapshot):
        """Large objects as of the slot's snapshot (replication does not carry them; the
        cutover copies their later changes inside its fence)."""
        src = _connect(self.source)
        tgt = self._target_conn()
        try:
            src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            src.execute("SET TRANSACTION SNAPSHOT %s" % quote_literal(snapshot))
            done = _large_objects.sync(src, tgt, self.role_map)
            src.execute("ROLLBACK")
        except _pg.psycopg.Error as error:
            self._fail("copying large objects failed: %s" % _pg.error_text(error, self.secrets))
        finally:
            src.close()
            tgt.close()
        self.result["large_objects"] = done
        return bool(done["copied"] or done["removed"]), "%(objects)d object(s), %(copied)d copied" % done
