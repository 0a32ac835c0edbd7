# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep application roles from writing to a database while they read it, private.

The application cutover starts Odoo's web container against the target before the maintenance
page goes up, so that its registry is loaded when users arrive. Until the cutover opens the
target, that Odoo must write nothing there. A role-level ``default_transaction_read_only`` does
not hold Odoo (its cursors begin ``READ WRITE``), and revoking CONNECT keeps it from loading
anything at all. So the hold takes the roles' write privileges instead: INSERT, UPDATE,
DELETE and TRUNCATE on every table, USAGE and UPDATE on every sequence (``nextval``). Reading,
the registry load and ``/web/health`` keep working; any write fails with "permission denied".

What was taken is recorded in ``odoo_migration.write_holds`` on the same database, in the
transaction that takes it, so that ``release`` gives back exactly those privileges, once, even
from another run. A role that could still write afterwards (through PUBLIC or a role it is a
member of, or as a superuser) makes the hold fail and roll back: a hold that does not hold is
worse than none.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    helper_schema as _helper_schema,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import ident

HOLDS_TABLE = "odoo_migration.write_holds"
HOLDS_DDL = _helper_schema.WRITE_HOLDS
TABLE_WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")
SEQUENCE_WRITES = ("USAGE", "UPDATE")
# Schemas whose tables are not the application's data.
SKIPPED_SCHEMAS = ["pg_catalog", "information_schema", "odoo_migration"]

# Privileges granted to the roles themselves (the owner's implicit ones included).
HELD_PRIVILEGES_SQL = (
    "SELECT n.nspname AS schema, c.relname AS relation, c.relkind::text AS kind, r.rolname AS role,"
    " a.privilege_type AS privilege"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " CROSS JOIN LATERAL aclexplode(coalesce(c.relacl,"
    "   acldefault(CASE WHEN c.relkind = 'S' THEN 's'::\"char\" ELSE 'r'::\"char\" END, c.relowner))) a"
    " JOIN pg_roles r ON r.oid = a.grantee"
    " WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname <> ALL(%(skipped)s) AND n.nspname NOT LIKE 'pg\\_%%'"
    " AND r.rolname = ANY(%(roles)s)"
    " AND CASE WHEN c.relkind = 'S' THEN a.privilege_type = ANY(%(sequence_writes)s)"
    "  ELSE a.privilege_type = ANY(%(table_writes)s) END"
    " ORDER BY 1, 2, 4, 5"
)
# What the roles could still write after the hold, however they got it.
STILL_WRITABLE_SQL = (
    "SELECT n.nspname AS schema, c.relname AS relation, c.relkind::text AS kind, r.rolname AS role,"
    " r.rolsuper AS superuser, p.privilege"
    " FROM pg_roles r CROSS JOIN pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " CROSS JOIN LATERAL unnest(CASE WHEN c.relkind = 'S' THEN %(sequence_writes)s::text[]"
    "   ELSE %(table_writes)s::text[] END) p(privilege)"
    " WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname <> ALL(%(skipped)s) AND n.nspname NOT LIKE 'pg\\_%%'"
    " AND r.rolname = ANY(%(roles)s)"
    " AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(r.oid, c.oid, p.privilege)"
    "  ELSE has_table_privilege(r.oid, c.oid, p.privilege) END"
    " ORDER BY 4, 1, 2, 6"
)


def _grouped(rows):
    """{(schema, relation, kind, role): [privilege, ...]} in a stable order."""
    groups = {}
    for row in rows:
        key = (row["schema"], row["relation"], row["kind"], row["role"])
        groups.setdefault(key, [])
        if row["privilege"] not in groups[key]:
            groups[key].append(row["privilege"])
    return [(key, groups[key]) for key in sorted(groups)]


def _statements(rows, verb, preposition):
    statements = []
    for (schema, relation, kind, role), privileges in _grouped(rows):
        statements.append(
            "%s %s ON %s %s.%s %s %s"
            % (
                verb,
                ", ".join(privileges),
                "SEQUENCE" if kind == "S" else "TABLE",
                ident(schema),
                ident(relation),
                preposition,
                ident(role),
            )
        )
    return statements


def revoke_statements(rows):
    """One REVOKE per relation and role, for privilege rows (schema, relation, kind, role, privilege)."""
    return _statements(rows, "REVOKE", "FROM")


def grant_statements(rows):
    """The GRANTs that give back what revoke_statements(rows) took."""
    return _statements(rows, "GRANT", "TO")


def parse_exceptions(exceptions):
    """{relation or schema.relation: [PRIVILEGE, ...]} -> set of (schema or None, relation, PRIVILEGE).

    Raises ValueError naming a privilege the hold does not take.
    """
    parsed = set()
    for name, privileges in (exceptions or {}).items():
        schema, _dot, relation = str(name).rpartition(".")
        for given in privileges or []:
            privilege = str(given).upper()
            if privilege not in TABLE_WRITES + SEQUENCE_WRITES:
                raise ValueError(
                    "write hold exception %s: %s is not a privilege the hold takes (%s)"
                    % (name, given, ", ".join(TABLE_WRITES + SEQUENCE_WRITES[:1]))
                )
            parsed.add((schema or None, relation, privilege))
    return parsed


def excepted(row, exceptions):
    """Whether a privilege row is one the hold leaves to the role."""
    return (row["schema"], row["relation"], row["privilege"]) in exceptions or (
        None,
        row["relation"],
        row["privilege"],
    ) in exceptions


def summary(rows):
    """{role: {"tables": n, "sequences": n}} for privilege rows."""
    counted = {}
    for (_schema, _relation, kind, role), _privileges in _grouped(rows):
        entry = counted.setdefault(role, dict(tables=0, sequences=0))
        entry["sequences" if kind == "S" else "tables"] += 1
    return counted


def _params(roles):
    return dict(
        roles=list(roles),
        skipped=SKIPPED_SCHEMAS,
        table_writes=list(TABLE_WRITES),
        sequence_writes=list(SEQUENCE_WRITES),
    )


def held_privileges(side, roles, exceptions=()):
    """The write privileges the roles hold themselves now (what hold() would take); reads only."""
    if not roles:
        return []
    rows = side.run("reading the application roles' write privileges", HELD_PRIVILEGES_SQL, _params(roles))
    return [row for row in rows if not excepted(row, exceptions)]


def _execute_all(side, what, statements):
    # One round trip: simple-protocol statements separated by semicolons.
    if statements:
        side.run(what, "; ".join(statements))


def hold(side, roles, exceptions=()):
    """Take the roles' write privileges on this database, recorded; {role: counts} newly taken.

    exceptions (parse_exceptions) are left to the roles. Raises PgError (and changes nothing)
    when a role could still write anything else afterwards.
    """
    roles = list(dict.fromkeys(roles or []))
    if not roles:
        return {}
    with side.conn.transaction():
        side.run(
            "waiting for other creators of the helper schema",
            _helper_schema.LOCK,
        )
        side.run("creating the helper schema", _helper_schema.SCHEMA)
        side.run("creating %s" % HOLDS_TABLE, HOLDS_DDL)
        rows = held_privileges(side, roles, exceptions)
        if rows:
            side.run(
                "recording the write holds",
                "INSERT INTO odoo_migration.write_holds (schema_name, relation, kind, role_name, privilege)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
                " ON CONFLICT DO NOTHING",
                tuple(
                    [row[key] for row in rows] for key in ("schema", "relation", "kind", "role", "privilege")
                ),
            )
            _execute_all(side, "taking the application roles' write privileges", revoke_statements(rows))
        left = side.run(
            "checking that the application roles cannot write", STILL_WRITABLE_SQL, _params(roles)
        )
        left = [row for row in left if not excepted(row, exceptions)]
        if left:
            raise_still_writable(side, left)
    return summary(rows)


def raise_still_writable(side, left):
    first = left[0]
    if first["superuser"]:
        cause = "%s is a superuser, which no privilege holds" % first["role"]
        fix = "let Odoo log in with a role that is not a superuser (discovery's plan names it)"
    else:
        cause = "%s can still write %d relation(s) (first: %s on %s.%s) through PUBLIC or a role it is in" % (
            first["role"],
            len(set((row["schema"], row["relation"]) for row in left)),
            first["privilege"],
            first["schema"],
            first["relation"],
        )
        fix = (
            "revoke that write privilege from PUBLIC or the other role and grant it to %s itself, "
            "then run again" % first["role"]
        )
    raise _pg.PgError(
        "cannot keep the application from writing to the %s before its cutover: %s; nothing was changed; %s"
        % (side.describe(), cause, fix)
    )


def holds_present(side):
    row = side.one(
        "looking for the write holds", "SELECT to_regclass(%s) IS NOT NULL AS present", (HOLDS_TABLE,)
    )
    return bool(row and row["present"])


def recorded_holds(side):
    """The recorded holds whose relations still exist (privilege rows); [] without the table."""
    if not holds_present(side):
        return []
    return side.run(
        "reading the write holds",
        "SELECT schema_name AS schema, relation, kind, role_name AS role, privilege"
        " FROM odoo_migration.write_holds"
        " WHERE to_regclass(format(%s, schema_name, relation)) IS NOT NULL ORDER BY 1, 2, 4, 5",
        ("%I.%I",),
    )


def release(side):
    """Give back every recorded hold of this database and forget them; the roles released."""
    if not holds_present(side):
        return []
    with side.conn.transaction():
        rows = recorded_holds(side)
        _execute_all(side, "giving the application roles their write privileges back", grant_statements(rows))
        side.run("forgetting the write holds", "DELETE FROM odoo_migration.write_holds")
    return sorted(set(row["role"] for row in rows))
