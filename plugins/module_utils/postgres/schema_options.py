# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Schema options of the source that the target refuses, private.

Column options (pg_attribute.attoptions), storage parameters of tables, materialized views,
indexes and their TOAST tables, and view options (pg_class.reloptions) are free-form text
in the catalog; the target validates them when pg_dump's script sets them again. A newer
minor release, an extension or a fork can leave options there that the target does not
know (PostgreSQL 17.12's `pg_attver` column option, refused by 18.6), and the restore then
fails half-way. So the options are read from the source catalog, each distinct one is
tried on the target on throwaway temporary objects in a transaction that is always rolled
back, and the ones refused are either dropped from the schema script (policy `drop`, each
one reported) or stop the migration before anything is written (policy `refuse`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import literal as _literal

POLICY_DROP = "drop"
POLICY_REFUSE = "refuse"
SCHEMA_OPTION_POLICIES = (POLICY_DROP, POLICY_REFUSE)
LISTED_OBJECTS = 5

_USER_RELATIONS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'odoo_migration') "
    "AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"
)

SOURCE_OPTIONS_SQL = (
    "SELECT 'column' AS scope, NULL::text AS am, "
    "format('%I.%I.%I', n.nspname, c.relname, a.attname) AS object, "
    "a.attoptions::text[] AS options FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped "
    "AND a.attoptions IS NOT NULL AND c.relkind IN ('r', 'p', 'm', 'f') AND " + _USER_RELATIONS + " "
    "UNION ALL "
    "SELECT CASE WHEN c.relkind IN ('i', 'I') THEN 'index' WHEN c.relkind = 'v' THEN 'view' "
    "ELSE 'table' END, "
    "am.amname::text, format('%I.%I', n.nspname, c.relname), c.reloptions::text[] FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam "
    "WHERE c.reloptions IS NOT NULL AND c.relkind IN ('r', 'p', 'm', 'i', 'I', 'v') AND "
    + _USER_RELATIONS
    + " "
    "UNION ALL "
    "SELECT 'table', NULL, format('%I.%I', n.nspname, c.relname), "
    "ARRAY(SELECT 'toast.' || o FROM unnest(t.reloptions) AS o) FROM pg_class c "
    "JOIN pg_class t ON t.oid = c.reltoastrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE t.reloptions IS NOT NULL AND " + _USER_RELATIONS + " ORDER BY 1, 3"
)

# Index access methods and a column of the probe table their default operator class takes.
_INDEX_PROBE_COLUMNS = dict(btree="i", hash="i", brin="i", gin="a", gist="p", spgist="p")


def split_option(text):
    """'name=value' -> (name, value); an option without '=' has the value 'true'."""
    name, sep, value = text.partition("=")
    return name.strip(), (value if sep else "true")


def option_clause(text):
    name, value = split_option(text)
    return "%s=%s" % (name, _literal(value))


def probe_statements(scope, am, option):
    """The statements that try one option on throwaway temporary objects; None when no probe fits."""
    clause = option_clause(option)
    if scope == "column":
        return ["ALTER TABLE pg_temp.odoo_migration_probe ALTER COLUMN i SET (%s)" % clause]
    if scope == "table":
        return ["CREATE TEMP TABLE odoo_migration_probe_table (t text) WITH (%s)" % clause]
    if scope == "view":
        return ["CREATE TEMP VIEW odoo_migration_probe_view WITH (%s) AS SELECT 1 AS x" % clause]
    if scope == "index" and am in _INDEX_PROBE_COLUMNS:
        return [
            "CREATE INDEX ON pg_temp.odoo_migration_probe USING %s (%s) WITH (%s)"
            % (am, _INDEX_PROBE_COLUMNS[am], clause)
        ]
    return None


def collect_source_options(conn):
    """Every option of the source's user objects: [{scope, am, object, options}]."""
    return [dict(row) for row in conn.execute(SOURCE_OPTIONS_SQL).fetchall()]


def _probe_key(entry, option):
    return (entry["scope"], entry["am"] if entry["scope"] == "index" else None, split_option(option)[0])


def distinct_probes(entries):
    """One (scope, am, option) to try per scope, index access method and option name: the
    first value seen (PostgreSQL 17.12's pg_attver has a different value on every column)."""
    seen = {}
    for entry in entries:
        for option in entry["options"] or []:
            seen.setdefault(_probe_key(entry, option), (entry["scope"], _probe_key(entry, option)[1], option))
    return list(seen.values())


def probe_target(conn, probes):
    """Try each option on the target; return {(scope, am, name): error text} for the refused.

    Everything runs in one transaction that is always rolled back, each try under its own
    savepoint, so the target keeps nothing (not even the temporary objects)."""
    refused = {}
    if not probes:
        return refused
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE TEMP TABLE odoo_migration_probe (i int, a int[], p point)")
        for scope, am, option in probes:
            statements = probe_statements(scope, am, option)
            if statements is None:
                continue
            try:
                with conn.transaction():
                    for statement in statements:
                        conn.execute(statement)
            except _pg.psycopg.Error as error:
                refused[(scope, am, split_option(option)[0])] = _pg.error_text(error, [])
    return refused


def refused_entries(entries, refused):
    """For each refused option name and scope: the source objects that carry it.

    Returns [{scope, option, error, objects, examples}] sorted by scope and option."""
    by_name = {}
    for (scope, _am, name), error in refused.items():
        by_name.setdefault((scope, name), {"error": error, "objects": set()})
    for entry in entries:
        for option in entry["options"] or []:
            key = _probe_key(entry, option)
            if key in refused:
                by_name[(key[0], key[2])]["objects"].add(entry["object"])
    report = []
    for (scope, name), found in sorted(by_name.items()):
        objects = sorted(found["objects"])
        report.append(
            dict(
                scope=scope,
                option=name,
                error=found["error"],
                objects=len(objects),
                examples=objects[:LISTED_OBJECTS],
            )
        )
    return report


def refused_names(report):
    """{'column': set(names), 'relation': set(names)} from a refused_entries report."""
    names = {"column": set(), "relation": set()}
    for item in report:
        names["column" if item["scope"] == "column" else "relation"].add(item["option"])
    return names


def describe(report):
    """One line per refused option, for messages and step logs."""
    return "; ".join(
        "%s option %s on %d object(s) (e.g. %s): %s"
        % (item["scope"], item["option"], item["objects"], ", ".join(item["examples"][:3]), item["error"])
        for item in report
    )


# -- the schema script --------------------------------------------------------------


def _split_items(text):
    """Split an option list on commas outside single quotes."""
    items, current, quoted = [], [], False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _closing_paren(text, start):
    """Index of the ')' closing the '(' at text[start - 1], quotes respected; -1 when none."""
    depth, quoted = 1, False
    for index in range(start, len(text)):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _strip_lists(line, keyword, names):
    """Remove the options named in `names` from every `<keyword> (...)` list of one line.

    Returns (line, emptied): emptied is True when a list lost all its options."""
    out, position, emptied = [], 0, False
    pattern = re.compile(r"\b%s \(" % keyword)
    while True:
        match = pattern.search(line, position)
        if not match:
            out.append(line[position:])
            break
        close = _closing_paren(line, match.end())
        if close < 0:
            out.append(line[position:])
            break
        items = _split_items(line[match.end() : close])
        kept = [item for item in items if split_option(item)[0].strip('"') not in names]
        if len(kept) == len(items):
            out.append(line[position : close + 1])
        elif kept:
            out.append(line[position : match.end()] + ", ".join(kept) + ")")
        else:
            emptied = True
            prefix = line[position : match.start()]
            out.append(prefix.rstrip(" ") if keyword == "WITH" else prefix + keyword + " ()")
        position = close + 1
    return "".join(out), emptied


_STATEMENT_STARTS = (
    "CREATE TABLE",
    "CREATE UNLOGGED TABLE",
    "CREATE MATERIALIZED VIEW",
    "CREATE VIEW",
    "CREATE INDEX",
    "CREATE UNIQUE INDEX",
    "ALTER TABLE",
    "ALTER FOREIGN TABLE",
    "ALTER MATERIALIZED VIEW",
    "ALTER VIEW",
    "ALTER INDEX",
    "WITH (",
)
_DOLLAR_TAG = re.compile(r"\$[A-Za-z_][A-Za-z_0-9]*\$|\$\$")


def strip_statement(line, names):
    """One statement line without the refused options; None when nothing of it is left."""
    if names["column"] and " ALTER COLUMN " in line and " SET (" in line:
        line, emptied = _strip_lists(line, "SET", names["column"])
        if emptied and re.search(r" SET \(\)\s*;?\s*$", line):
            return None
    if names["relation"] and "WITH (" in line:
        line, _emptied = _strip_lists(line, "WITH", names["relation"])
    return line


def rewrite_statement_lines(script, starts, rewrite):
    """The pg_dump script with each line that starts one of `starts` (outside a dollar-quoted
    function body) replaced by rewrite(line); None from rewrite keeps the line."""
    lines = []
    open_tag = None
    for line in script.split("\n"):
        if open_tag is None and line.startswith(starts):
            rewritten = rewrite(line)
            lines.append(line if rewritten is None else rewritten)
        else:
            lines.append(line)
        for tag in _DOLLAR_TAG.findall(line):
            if open_tag is None:
                open_tag = tag
            elif tag == open_tag:
                open_tag = None
    return "\n".join(lines)


def strip_script(script, names):
    """The pg_dump script with the refused options removed; function bodies are left alone."""
    if not names["column"] and not names["relation"]:
        return script

    def strip(line):
        stripped = strip_statement(line, names)
        return "-- odoo_migration: dropped options the target refuses" if stripped is None else stripped

    return rewrite_statement_lines(script, _STATEMENT_STARTS, strip)


def refused_on_target(source_conn, target_conn):
    """Read the source's options, try them on the target; the refused_entries report."""
    entries = collect_source_options(source_conn)
    return refused_entries(entries, probe_target(target_conn, distinct_probes(entries)))
