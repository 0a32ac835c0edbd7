# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chunked comparison of a database on two servers, private (read-only).

Every table of the source is compared with the table of the same name on the target,
chunk by chunk over primary-key ranges (single integer key: ranges of ``chunk_rows`` key
values; any other key: the whole table as one chunk). Per chunk: row count and an
order-independent hash, the sum of a 64-bit number taken from md5(ROW(columns)::text),
which does not depend on the server version (hashtextextended would do, md5 is plainer).
A chunk that differs is drilled down to rows: the keys missing on the target, extra on
the target, or different. Tables without a primary key are compared whole (count and
hash), without drill-down. Every sequence is compared too (last_value, is_called), and every
large object (by OID: md5 of its content, owner, grants).

Both sides are read in one REPEATABLE READ READ ONLY transaction each, with the same
session settings (TimeZone UTC, DateStyle ISO, extra_float_digits 3, bytea hex), so
``::text`` renders values identically. Compare when both sides are quiet (after the
cutover's fence, before the application switch) or the result is a snapshot of a moving
target.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    large_objects as _large_objects,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    snapshot_holder as _snapshot_holder,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.cutover import (
    HELPER_SCHEMA,
    SEQUENCE_LIST_SQL,
    SNAPSHOT_HOLDER_NAME,
    ident,
    qualified,
    read_sequences,
)

try:
    from psycopg import sql as _sql
except ImportError:  # reported through _pg.HAS_PSYCOPG
    _sql = None

APPLICATION_NAME = "odoo_migration_compare"
DEFAULT_CHUNK_ROWS = 50000
DEFAULT_MAX_DIFFERENCES = 20
INTEGER_TYPES = ("int2", "int4", "int8")
SESSION_SETTINGS = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 3",
    "SET bytea_output = 'hex'",
)

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
       ARRAY(SELECT a.attname::text FROM pg_index i
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY k.ord) AS pk,
       (SELECT t.typname::text FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
          JOIN pg_type t ON t.oid = a.atttypid
        WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1) AS pk_type
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT (n.nspname = ANY(%s))
ORDER BY 1, 2
"""


# --------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------


def plan_chunks(low, high, chunk_rows):
    """[start, end) key ranges covering low..high inclusive, chunk_rows key values each."""
    if low is None or high is None:
        return []
    chunk_rows = max(int(chunk_rows), 1)
    low, high = int(low), int(high)
    chunks = []
    start = low
    while start <= high:
        end = min(start + chunk_rows, high + 1)
        chunks.append((start, end))
        start = end
    return chunks


def union_range(ranges):
    """The smallest (low, high) covering every (low, high) given; (None, None) when all are empty."""
    lows = [r[0] for r in ranges if r[0] is not None]
    highs = [r[1] for r in ranges if r[1] is not None]
    return (min(lows) if lows else None, max(highs) if highs else None)


def row_expression(columns, alias="t"):
    """ROW(t."a", t."b", ...)::text: a row's text from named columns, independent of column order."""
    return "ROW(%s)::text" % ", ".join("%s.%s" % (alias, ident(column)) for column in columns)


def hash_expression(columns, alias="t"):
    """An order-independent aggregate: sum of the first 64 bits of md5(row text) as numeric."""
    return "coalesce(sum(('x' || substr(md5(%s), 1, 16))::bit(64)::bigint::numeric), 0)" % row_expression(
        columns, alias
    )


def chunk_statement(table, columns, key=None):
    """SELECT count, hash of a table, or of a key range [%s, %s) when key is given."""
    where = " WHERE %s >= %%s AND %s < %%s" % (ident(key), ident(key)) if key else ""
    return "SELECT count(*)::bigint AS rows, %s::text AS hash FROM %s AS t%s" % (
        hash_expression(columns),
        qualified(table["schema"], table["name"]),
        where,
    )


def rows_statement(table, columns, key_columns, key=None):
    """SELECT key text and row md5 of a table (or a key range), ordered by key."""
    key_text = "ROW(%s)::text" % ", ".join("t.%s" % ident(c) for c in key_columns)
    where = " WHERE %s >= %%s AND %s < %%s" % (ident(key), ident(key)) if key else ""
    order = ", ".join("t.%s" % ident(c) for c in key_columns)
    return "SELECT %s AS key, md5(%s) AS digest FROM %s AS t%s ORDER BY %s" % (
        key_text,
        row_expression(columns),
        qualified(table["schema"], table["name"]),
        where,
        order,
    )


def diff_rows(source_rows, target_rows, limit=DEFAULT_MAX_DIFFERENCES):
    """Keys missing on the target, extra on the target, and different, the first `limit` of each."""
    source = dict((row["key"], row["digest"]) for row in source_rows)
    target = dict((row["key"], row["digest"]) for row in target_rows)
    missing = [key for key in source if key not in target]
    extra = [key for key in target if key not in source]
    different = [key for key in source if key in target and source[key] != target[key]]
    return dict(
        missing_on_target=missing[:limit],
        extra_on_target=extra[:limit],
        different=different[:limit],
        counts=dict(missing_on_target=len(missing), extra_on_target=len(extra), different=len(different)),
    )


def compare_sequences(source_values, target_values):
    """Sequences that differ: missing on the target, or another (last_value, is_called)."""
    target = dict(((v["schema"], v["name"]), v) for v in target_values)
    differences = []
    for value in source_values:
        other = target.get((value["schema"], value["name"]))
        name = qualified(value["schema"], value["name"])
        if other is None:
            differences.append(dict(kind="sequence_missing", table=name))
        elif (int(other["last_value"]), bool(other["is_called"])) != (
            int(value["last_value"]),
            bool(value["is_called"]),
        ):
            differences.append(
                dict(
                    kind="sequence_value",
                    table=name,
                    source=dict(last_value=int(value["last_value"]), is_called=bool(value["is_called"])),
                    target=dict(last_value=int(other["last_value"]), is_called=bool(other["is_called"])),
                )
            )
    return differences


# --------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, name, endpoint, secrets):
        self.name = name
        self.endpoint = endpoint
        self.secrets = secrets
        self.conn = _pg.connect(endpoint, application_name=APPLICATION_NAME, statement_timeout_ms=0)
        self.transaction = None

    def run(self, what, statement, params=None):
        try:
            cursor = self.conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
        except _pg.psycopg.Error as error:
            raise _pg.PgError(
                "%s failed on the %s (%s): %s"
                % (what, self.name, self.endpoint.describe(), _pg.error_text(error, self.secrets))
            ) from None

    def begin(self, snapshot=None):
        self.conn.isolation_level = _pg.psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True
        self.transaction = self.conn.transaction()
        self.transaction.__enter__()
        if snapshot:
            try:
                self.conn.execute(_sql.SQL("SET TRANSACTION SNAPSHOT {}").format(_sql.Literal(snapshot)))
            except _pg.psycopg.Error as error:
                raise _pg.PgError(
                    "cannot read the %s as of the fence instant (snapshot %s): %s. Its holder is gone "
                    "(ended, or the server restarted); that instant cannot be compared any more, compare "
                    "both sides while they are quiet instead"
                    % (self.name, snapshot, _pg.error_text(error, self.secrets))
                )
        for statement in SESSION_SETTINGS:
            self.run("session settings", statement)

    def close(self):
        try:
            if self.transaction is not None:
                self.transaction.__exit__(None, None, None)
        finally:
            self.conn.close()


def _table_key(table):
    return (table["schema"], table["name"])


def run_compare(
    source,
    target,
    exclude_schemas=(HELPER_SCHEMA,),
    chunk_rows=DEFAULT_CHUNK_ROWS,
    max_differences=DEFAULT_MAX_DIFFERENCES,
    compare_sequence_values=True,
    role_map=None,
    snapshots=None,
    release_snapshots=True,
):
    """Compare every table (and sequence); return the report. Changes nothing but, with
    release_snapshots, the end of the processes holding `snapshots` (pg_cutover's).
    role_map: source role -> target role, for the owners and grants of large objects."""
    _pg.require_psycopg()
    secrets = [s for s in (source.password, target.password) if s]
    readers = {}
    try:
        readers["source"] = _Reader("source", source, secrets)
        readers["target"] = _Reader("target", target, secrets)
        for name, reader in readers.items():
            reader.begin((snapshots or {}).get(name, {}).get("snapshot"))
        if snapshots:
            compare_sequence_values = False
        src, tgt = readers["source"], readers["target"]
        tables = src.run("listing tables", TABLES_SQL, (list(exclude_schemas),))
        target_tables = dict(
            (_table_key(t), t) for t in tgt.run("listing tables", TABLES_SQL, (list(exclude_schemas),))
        )
        report = dict(
            tables_compared=0,
            rows_compared=0,
            chunks_compared=0,
            tables_without_primary_key=[],
            differences=[],
            sequences_compared=0,
        )
        differences = report["differences"]
        report["stopped_at_max_differences"] = False

        def enough():
            # max_differences ends the whole compare, not one table's chunks.
            if len(differences) >= max_differences:
                del differences[max_differences:]
                report["stopped_at_max_differences"] = True
            return report["stopped_at_max_differences"]

        for table in tables:
            if enough():
                break
            name = qualified(table["schema"], table["name"])
            other = target_tables.pop(_table_key(table), None)
            if other is None:
                differences.append(dict(kind="table_missing", table=name))
                continue
            missing_columns = [c for c in table["columns"] if c not in other["columns"]]
            if missing_columns:
                differences.append(dict(kind="columns_missing", table=name, columns=missing_columns))
                continue
            report["tables_compared"] += 1
            columns = table["columns"]
            pk = table["pk"]
            if not pk:
                report["tables_without_primary_key"].append(name)
            single_int = len(pk) == 1 and table["pk_type"] in INTEGER_TYPES
            if single_int:
                key = pk[0]
                bounds_sql = "SELECT min(%s)::bigint AS low, max(%s)::bigint AS high FROM %s" % (
                    ident(key),
                    ident(key),
                    name,
                )
                bounds = [r.run("reading key range of %s" % name, bounds_sql)[0] for r in (src, tgt)]
                chunks = plan_chunks(
                    *union_range([(b["low"], b["high"]) for b in bounds]), chunk_rows=chunk_rows
                )
            else:
                key = None
                chunks = [None]
            statement = chunk_statement(table, columns, key)
            for chunk in chunks:
                results = [r.run("hashing %s" % name, statement, chunk)[0] for r in (src, tgt)]
                report["chunks_compared"] += 1
                report["rows_compared"] += results[0]["rows"]
                if (results[0]["rows"], results[0]["hash"]) == (results[1]["rows"], results[1]["hash"]):
                    continue
                difference = dict(
                    kind="rows",
                    table=name,
                    chunk=list(chunk) if chunk else None,
                    source_rows=results[0]["rows"],
                    target_rows=results[1]["rows"],
                )
                if pk:
                    rows_sql = rows_statement(table, columns, pk, key)
                    drill = [r.run("drilling into %s" % name, rows_sql, chunk) for r in (src, tgt)]
                    difference.update(diff_rows(drill[0], drill[1], max_differences))
                differences.append(difference)
                if enough():
                    break
        for key in target_tables:
            differences.append(dict(kind="table_extra_on_target", table=qualified(*key)))
        if enough():
            report["equal"] = False
            return report
        if compare_sequence_values:
            listed = src.run("listing sequences", SEQUENCE_LIST_SQL)
            excluded = set(exclude_schemas)
            source_values = [v for v in read_sequences(src) if v["schema"] not in excluded]
            target_values = [v for v in read_sequences(tgt) if v["schema"] not in excluded]
            report["sequences_compared"] = len([s for s in listed if s["schema"] not in excluded])
            differences.extend(compare_sequences(source_values, target_values))
        # Large objects: each one by OID, its content hash, owner and grants.
        source_objects = _large_objects.rename(
            dict((row["oid"], row) for row in src.run("hashing large objects", _large_objects.DIGESTS_SQL)),
            role_map,
        )
        target_objects = dict(
            (row["oid"], row) for row in tgt.run("hashing large objects", _large_objects.DIGESTS_SQL)
        )
        report["large_objects_compared"] = len(source_objects)
        report["large_object_bytes_compared"] = sum(row["bytes"] or 0 for row in source_objects.values())
        differences.extend(_large_objects.differences(source_objects, target_objects, max_differences))
        enough()
        report["equal"] = not differences
        return report
    finally:
        for reader in readers.values():
            try:
                reader.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        if snapshots and release_snapshots:
            _release(dict(source=source, target=target), snapshots, secrets)


def _release(endpoints, snapshots, secrets):
    """End the processes holding the fence instant's snapshots (best effort: they end on their own)."""
    for name, held in snapshots.items():
        if name not in endpoints or not held.get("backend_pid"):
            continue
        try:
            conn = _pg.connect(endpoints[name], application_name=APPLICATION_NAME)
        except _pg.PgError:
            continue
        try:
            _snapshot_holder.release(conn, held["backend_pid"], SNAPSHOT_HOLDER_NAME)
        except _pg.psycopg.Error:
            pass
        finally:
            conn.close()
