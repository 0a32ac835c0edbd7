# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy's post-data, private: keys early, then secondary indexes, constraints, foreign keys
(NOT VALID and validated in parallel for big tables), triggers, materialized views, ANALYZE."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_common import (
    VALIDATE_LATER_BYTES,
    _all,
    _one,
    qname,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.cutover import (
    MATERIALIZED_VIEWS_SQL,
    refresh_materialized_views,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import quote_ident


class PostData:
    """Steps of Migration (postgres/replication.py): this mixin uses its attributes."""

    # -- keys and post-data from the source catalog -------------------------------------
    def source_constraints_and_indexes(self, conn):
        """Post-data objects of the source, as (kind, schema, table, name, sql)."""
        items = []
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, con.conname AS name, con.contype::text AS kind, "
            "pg_get_constraintdef(con.oid) AS def, c.relkind = 'p' AS partitioned, "
            "(SELECT i.indisreplident FROM pg_index i WHERE i.indexrelid = con.conindid) AS replident "
            "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE con.contype IN ('p', 'u', 'x', 'f') AND c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' "
            "AND con.conparentid = 0 ORDER BY 1, 2, 3",
        ):
            table = qname(row["schema"], row["tbl"])
            # On a partitioned table the constraint recurses, so each partition gets its key as
            # on the source (ONLY would leave the partitions without one).
            only = "" if row["partitioned"] else "ONLY "
            sql = "ALTER TABLE %s%s ADD CONSTRAINT %s %s" % (
                only,
                table,
                quote_ident(row["name"]),
                row["def"],
            )
            kind = {"p": "primary_key", "u": "unique", "x": "exclusion", "f": "foreign_key"}[row["kind"]]
            if kind == "unique" and row["replident"]:
                kind = "replident_unique"
            items.append((kind, row["schema"], row["tbl"], row["name"], sql))
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, ic.relname AS name, "
            "pg_get_indexdef(i.indexrelid) AS def, i.indisreplident AS replident, "
            "c.relkind = 'p' AS partitioned "
            "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
            "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname !~ '^pg_' AND NOT EXISTS (SELECT 1 FROM pg_constraint con "
            "  WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')) "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) ORDER BY 1, 2, 3",
        ):
            kind = "replident_index" if row["replident"] else "index"
            # pg_get_indexdef says ON ONLY for a partitioned table's index; without it the
            # index is built on every partition too.
            sql = row["def"].replace(" ON ONLY ", " ON ", 1) if row["partitioned"] else row["def"]
            items.append((kind, row["schema"], row["tbl"], row["name"], sql))
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, t.tgname AS name, pg_get_triggerdef(t.oid) AS def "
            "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT t.tgisinternal AND t.tgparentid = 0 "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
        ):
            items.append(("trigger", row["schema"], row["tbl"], row["name"], row["def"]))
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, c.relreplident::text AS ri "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND c.relreplident IN ('f', 'i') AND n.nspname !~ '^pg_' "
            "AND n.nspname <> 'information_schema' ORDER BY 1, 2",
        ):
            table = qname(row["schema"], row["tbl"])
            if row["ri"] == "f":
                items.append(
                    (
                        "replident_full",
                        row["schema"],
                        row["tbl"],
                        None,
                        "ALTER TABLE %s REPLICA IDENTITY FULL" % table,
                    )
                )
        return items

    @staticmethod
    def _object_exists(conn, kind, schema, table, name):
        if kind in ("primary_key", "unique", "replident_unique", "exclusion", "foreign_key"):
            sql = (
                "SELECT 1 AS x FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
                "AND con.conname = %s"
            )
            return _one(conn, sql, (schema, table, name)) is not None
        if kind in ("index", "replident_index"):
            return _one(conn, "SELECT to_regclass(%s) IS NOT NULL AS x", (qname(schema, name),))["x"]
        if kind == "trigger":
            sql = (
                "SELECT 1 AS x FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
                "AND t.tgname = %s"
            )
            return _one(conn, sql, (schema, table, name)) is not None
        return False

    def _table_sizes(self):
        """{(schema, table): bytes} on the target, to start the longest work first."""
        conn = self._target_conn()
        try:
            rows = _all(
                conn,
                "SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid)::bigint AS bytes "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'",
            )
        finally:
            conn.close()
        return dict(((r["schema"], r["name"]), r["bytes"]) for r in rows)

    def _apply_items(self, items, parallel=True):
        """Create the objects that are missing on the target, `jobs` at a time, the ones on
        the biggest tables first (so no long index build starts last and runs alone)."""
        todo = []
        conn = self._target_conn()
        try:
            for item in items:
                if item[0] == "replident_full" or not self._object_exists(conn, *item[:4]):
                    todo.append(item)
        finally:
            conn.close()
        if not todo:
            return 0
        sizes = self._table_sizes() if parallel and len(todo) > 1 else {}
        todo.sort(key=lambda item: -(sizes.get((item[1], item[2])) or 0))
        if self.check_mode:
            for item in todo:
                self._would(item[4])
            return len(todo)
        lock = threading.Lock()
        conns = []
        errors = []

        def work(item):
            with lock:
                c = conns.pop() if conns else None
            if c is None:
                c = self._target_conn()
                c.execute("SET maintenance_work_mem = '256MB'")
            try:
                c.execute(item[4])
                if item[0] in ("replident_unique", "replident_index"):
                    index = item[3]
                    c.execute(
                        "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s"
                        % (qname(item[1], item[2]), quote_ident(index))
                    )
            except _pg.psycopg.Error as error:
                errors.append("%s: %s" % (item[4][:200], _pg.error_text(error, self.secrets)))
            with lock:
                conns.append(c)

        with ThreadPoolExecutor(max_workers=self.jobs if parallel else 1) as pool:
            list(pool.map(work, todo))
        for c in conns:
            c.close()
        if errors:
            self._fail(
                "creating %d object(s) on the target failed: %s" % (len(errors), "; ".join(errors[:5]))
            )
        return len(todo)

    def early_keys(self, items):
        """Primary keys and replica-identity indexes: apply needs them, create before data."""
        early = [
            i
            for i in items
            if i[0] in ("primary_key", "replident_unique", "replident_index", "replident_full")
        ]
        count = self._apply_items(early)
        return bool(count), "%d primary key / replica identity object(s)" % count

    def post_data(self, items):
        """Secondary indexes and unique constraints in parallel, then foreign keys, then triggers.

        Foreign keys are added serially on one connection, in batches. ADD FOREIGN KEY holds
        a SHARE ROW EXCLUSIVE lock on the referenced table while it scans the referencing
        one, and nearly every Odoo table references res_users (create_uid, write_uid), so
        in parallel they would queue (and two workers can deadlock on a pair of tables).
        Keys of big tables are added NOT VALID (no scan) and then validated: VALIDATE
        CONSTRAINT locks the referenced table in ROW SHARE mode only, so those scans run in
        parallel, one worker per referencing table. Small tables' keys are added whole (one
        VALIDATE statement per key costs more than their scan). The end state is the same.
        """
        timings = []
        started = time.monotonic()
        rest = [i for i in items if i[0] in ("unique", "exclusion", "index")]
        count = self._apply_items(rest)
        timings.append("indexes %.1fs" % (time.monotonic() - started))
        started = time.monotonic()
        fks = [i for i in items if i[0] == "foreign_key"]
        count += self._add_foreign_keys(fks)
        timings.append("foreign keys added %.1fs" % (time.monotonic() - started))
        started = time.monotonic()
        validated = self._validate_foreign_keys(fks)
        timings.append("%d validated %.1fs" % (validated, time.monotonic() - started))
        count += self._apply_items([i for i in items if i[0] == "trigger"])
        return bool(count or validated), "%d index/constraint/trigger object(s); %s" % (
            count,
            ", ".join(timings),
        )

    @staticmethod
    def _not_valid(item):
        sql = item[4]
        return item if sql.rstrip().endswith("NOT VALID") else item[:4] + (sql + " NOT VALID",)

    def _add_foreign_keys(self, fks, batch=100):
        """Add the missing foreign keys, `batch` per transaction and round trip (an Odoo
        database has thousands; one at a time, round trips dominate), NOT VALID on tables
        of VALIDATE_LATER_BYTES or more. A batch that fails is retried key by key, so the
        error names the key."""
        conn = self._target_conn()
        try:
            have = set(
                (r["schema"], r["tbl"], r["name"])
                for r in _all(
                    conn,
                    "SELECT n.nspname AS schema, c.relname AS tbl, con.conname AS name "
                    "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE con.contype = 'f'",
                )
            )
            # Keys on small tables are added whole (their check is quick, in the same batch);
            # only the big tables' keys are left NOT VALID for the parallel validation.
            sizes = self._table_sizes()
            todo = [
                self._not_valid(i) if (sizes.get((i[1], i[2])) or 0) >= VALIDATE_LATER_BYTES else i
                for i in fks
                if (i[1], i[2], i[3]) not in have
            ]
            if self.check_mode:
                for item in todo:
                    self._would(item[4])
                return len(todo)
            errors = []
            for start in range(0, len(todo), batch):
                part = todo[start : start + batch]
                try:
                    with conn.transaction():
                        conn.execute(";\n".join(item[4] for item in part))
                except _pg.psycopg.Error:
                    for item in part:
                        try:
                            conn.execute(item[4])
                        except _pg.psycopg.Error as error:
                            errors.append("%s: %s" % (item[4][:200], _pg.error_text(error, self.secrets)))
        finally:
            conn.close()
        if errors:
            self._fail(
                "creating %d foreign key(s) on the target failed: %s" % (len(errors), "; ".join(errors[:5]))
            )
        return len(todo)

    def _validate_foreign_keys(self, fks):
        """VALIDATE the target's not-yet-validated foreign keys that are valid on the source,
        `jobs` tables at a time (a table's own keys one after the other: its lock is
        SHARE UPDATE EXCLUSIVE, which conflicts with itself)."""
        wanted = set((i[1], i[2], i[3]) for i in fks if not i[4].rstrip().endswith("NOT VALID"))
        conn = self._target_conn()
        try:
            pending = [
                (r["schema"], r["tbl"], r["name"])
                for r in _all(
                    conn,
                    "SELECT n.nspname AS schema, c.relname AS tbl, con.conname AS name "
                    "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE con.contype = 'f' AND NOT con.convalidated",
                )
            ]
        finally:
            conn.close()
        by_table = {}
        for key in pending:
            if key in wanted:
                by_table.setdefault(key[:2], []).append(key[2])
        if not by_table:
            return 0
        if self.check_mode:
            for table, names in by_table.items():
                for name in names:
                    self._would("VALIDATE CONSTRAINT %s on %s" % (name, qname(*table)))
            return sum(len(n) for n in by_table.values())
        sizes = self._table_sizes()
        tables = sorted(by_table, key=lambda t: -(sizes.get(t) or 0))
        errors = []

        def work(table):
            c = self._target_conn()
            try:
                # The check is an anti-join: room to hash the referenced keys in memory.
                c.execute("SET work_mem = '64MB'")
                for name in by_table[table]:
                    try:
                        c.execute(
                            "ALTER TABLE %s VALIDATE CONSTRAINT %s" % (qname(*table), quote_ident(name))
                        )
                    except _pg.psycopg.Error as error:
                        text = _pg.error_text(error, self.secrets)
                        errors.append("%s.%s: %s" % (qname(*table), name, text))
            finally:
                c.close()

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(work, tables))
        if errors:
            self._fail(
                "validating %d foreign key(s) on the target failed: %s" % (len(errors), "; ".join(errors[:5]))
            )
        return sum(len(n) for n in by_table.values())

    def _refresh_materialized_views(self, src):
        """pg_dump creates them WITH NO DATA; the ones populated on the source are filled from
        the copied tables (the cutover refreshes them again once writes move)."""
        names = [row["name"] for row in _all(src, MATERIALIZED_VIEWS_SQL)]
        if not names:
            return False, None
        if self.check_mode:
            for name in names:
                self._would("REFRESH MATERIALIZED VIEW %s" % name)
            return True, None
        tgt = self._target_conn()
        try:
            refreshed, failed = refresh_materialized_views(tgt, names, self.secrets)
        finally:
            tgt.close()
        if failed:
            self._fail(
                "refreshing materialized views failed: %s"
                % "; ".join("%(name)s: %(error)s" % f for f in failed)
            )
        return True, "%d refreshed" % len(refreshed)

    def _analyze(self):
        """ANALYZE every table, `jobs` at a time, biggest first (a database-wide ANALYZE
        works through the tables one by one on a single backend)."""
        sizes = self._table_sizes()
        tables = sorted(sizes, key=lambda t: -(sizes[t] or 0))
        errors = []

        def work(chunk):
            c = self._target_conn()
            try:
                for table in chunk:
                    try:
                        c.execute("ANALYZE %s" % qname(*table))
                    except _pg.psycopg.Error as error:
                        errors.append("%s: %s" % (qname(*table), _pg.error_text(error, self.secrets)))
            finally:
                c.close()

        # One connection per worker: tables dealt round-robin, biggest first.
        workers = max(1, min(self.jobs, len(tables)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, [tables[i::workers] for i in range(workers)]))
        if errors:
            self._fail("ANALYZE failed on the target: %s" % "; ".join(errors[:5]))
        return True, "%d table(s)" % len(tables)
