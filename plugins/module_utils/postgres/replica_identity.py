# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which key lets logical replication apply UPDATE and DELETE on a table, private.

The preflight judges each table with these; the copy sets the replica identity it chose.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

POLICY_REFUSE = "refuse"
POLICY_FULL = "full"
REPLICA_IDENTITY_POLICIES = (POLICY_FULL, POLICY_REFUSE)
RELREPLIDENT = {"d": "default", "n": "nothing", "f": "full", "i": "index"}

# Schemas of the database's own objects (the system's and temporary ones left out).
USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"
)


def index_problems(index):
    """Why a unique index cannot be a replica identity; [] when it can.

    PostgreSQL accepts an index for REPLICA IDENTITY USING INDEX only if it is unique,
    valid, immediate (not deferrable), not partial, has no expression, and all its key
    columns are NOT NULL. A deferrable primary key is not used as replica identity either.
    """
    problems = []
    if not index.get("is_unique"):
        problems.append("not unique")
    if index.get("is_partial"):
        problems.append("partial (has a WHERE clause)")
    if index.get("is_deferrable"):
        problems.append("deferrable")
    if not index.get("is_valid", True):
        problems.append("invalid (an interrupted CREATE INDEX CONCURRENTLY)")
    columns = index.get("columns") or []
    if index.get("has_expressions") or any(column.get("name") is None for column in columns):
        problems.append("on an expression")
    nullable = [column["name"] for column in columns if column.get("name") and not column.get("not_null")]
    if nullable:
        problems.append("nullable column%s %s" % ("s" if len(nullable) > 1 else "", ", ".join(nullable)))
    return problems


def pick_identity_index(indexes):
    """The best usable non-primary unique index: the one already chosen as replica identity,
    then one backing a UNIQUE constraint, then the fewest columns, then by name."""
    usable = [ix for ix in indexes if not ix.get("is_primary") and not index_problems(ix)]
    if not usable:
        return None
    return sorted(
        usable,
        key=lambda ix: (
            not ix.get("is_replident"),
            not ix.get("constraint_name"),
            len(ix.get("columns") or []),
            ix["name"],
        ),
    )[0]


def collect_tables(conn):
    """The database's tables (plain and partitioned) with their replica identity and size."""
    tables = conn.execute(
        "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name, "
        "format('%I.%I', n.nspname, c.relname) AS qualified, c.relkind::text AS relkind, "
        "c.relpersistence::text AS relpersistence, c.relreplident::text AS relreplident, "
        "pg_total_relation_size(c.oid)::bigint AS bytes, c.reltuples::bigint AS rows_estimate "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND " + USER_SCHEMAS + " ORDER BY n.nspname, c.relname"
    ).fetchall()
    for table in tables:
        if table["rows_estimate"] is not None and table["rows_estimate"] < 0:
            table["rows_estimate"] = None
    return tables


def collect_unique_indexes(conn, version_num):
    """Every unique index of those tables, with what decides whether it can be a replica identity."""
    key_columns = "i.indnkeyatts" if version_num >= 110000 else "i.indnatts"
    return conn.execute(
        "SELECT i.indrelid::bigint AS table_oid, ic.relname AS name, quote_ident(ic.relname) AS quoted_name, "
        "i.indisprimary AS is_primary, i.indisunique AS is_unique, NOT i.indimmediate AS is_deferrable, "
        "i.indisvalid AS is_valid, i.indisreplident AS is_replident, i.indpred IS NOT NULL AS is_partial, "
        "i.indexprs IS NOT NULL AS has_expressions, con.conname AS constraint_name, "
        "(SELECT json_agg(json_build_object('name', a.attname, 'not_null', a.attnotnull) ORDER BY k.ord) "
        "   FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
        "   LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "  WHERE k.ord <= " + key_columns + ") AS columns "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u') "
        "WHERE i.indisunique AND c.relkind IN ('r', 'p') AND " + USER_SCHEMAS + " ORDER BY ic.relname"
    ).fetchall()
