# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances sharing one target PostgreSQL, private.

Roles are cluster-wide, tenants are not. Every instance migrated to a target claims there
the databases and roles it creates or adopts (table odoo_migration.tenant_claim in the
target's maintenance database); a name that another instance claimed, or a database that
exists and nobody claimed, is a collision reported before anything is copied.

Source roles are renamed on the way (role_map: source name -> target name, from the
plan's target_roles): ownership, grants, default privileges, memberships and large objects
carry the target's name, so each instance's application logs in as its own role and owns
only its own databases. On the target, CONNECT on an instance's databases is given to its
roles only, never to PUBLIC.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    helper_schema as _helper_schema,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    schema_options as _schema_options,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    ident as quote_ident,
)

CLAIMS_DATABASE = "postgres"
DATABASE, ROLE = "database", "role"
MAX_IDENTIFIER_BYTES = 63
CLAIMS_TABLE = "odoo_migration.tenant_claim"
CLAIMS_SQL = _helper_schema.TENANT_CLAIMS_SQL


def claimable(roles, migration_login):
    """The roles an instance claims on a shared target: all it uses but the migration's own login,
    which owns the helper schema on every source and belongs to no instance."""
    return [role for role in roles if role != migration_login]


class TenancyError(Exception):
    """A name this instance needs on the target belongs to another one."""


def instance_role_name(role, instance):
    """The target's name for `role` of `instance`: <role>_<instance>, at most 63 bytes."""
    slug = re.sub(r"[^a-z0-9]+", "_", instance.lower()).strip("_")
    name = "%s_%s" % (role, slug)
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    head = name.encode("utf-8")[: MAX_IDENTIFIER_BYTES - 9].decode("utf-8", "ignore")
    return "%s_%s" % (head, digest)


def default_role_map(instance, application_role, roles):
    """{source: target} for the instance's application role and every role of its databases
    that cannot log in (group and owner roles: renaming them is invisible to people). Login
    roles people or tools use keep their names; a collision on one is reported instead."""
    names = set([application_role] if application_role else [])
    names.update(row["name"] for row in roles if not row.get("can_login"))
    return dict((name, instance_role_name(name, instance)) for name in sorted(names))


def role_map_problems(mapping):
    """What is wrong with a role map (empty list: nothing)."""
    problems = []
    for source, target in sorted(mapping.items()):
        if not source or not target:
            problems.append("%r -> %r: both names must be non-empty" % (source, target))
            continue
        if len(target.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            problems.append("%s -> %s: PostgreSQL names are at most 63 bytes" % (source, target))
        if target.startswith("pg_"):
            problems.append("%s -> %s: names starting with pg_ are reserved" % (source, target))
        if target != source and target in mapping and mapping[target] != target:
            problems.append(
                "%s -> %s: %s is also a source role renamed to %s; pick a name no source role has"
                % (source, target, target, mapping[target])
            )
    targets = sorted(mapping.values())
    for name in sorted(set(name for name in targets if targets.count(name) > 1)):
        sources = sorted(key for key, value in mapping.items() if value == name)
        problems.append("%s all map to %s: each source role needs its own name" % (", ".join(sources), name))
    return problems


def renamed(name, mapping):
    return mapping.get(name, name) if mapping else name


# -- pg_dump scripts -------------------------------------------------------------------

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_OWNER = re.compile(r"^(ALTER .+ OWNER TO )(%s)(;.*)$" % _IDENT)
_GRANTEES = re.compile(
    r"^((?:GRANT|REVOKE) .+ (?:TO|FROM) )(%s(?:, %s)*)((?: WITH (?:GRANT|ADMIN) OPTION)?"
    r"(?: GRANTED BY %s)?(?: CASCADE| RESTRICT)?;.*)$" % (_IDENT, _IDENT, _IDENT)
)
_GRANTED_BY = re.compile(r"( GRANTED BY )(%s)" % _IDENT)
_DEFAULT_PRIVILEGES = re.compile(
    r"^(ALTER DEFAULT PRIVILEGES FOR ROLE )(%s(?:, %s)*)( (?:IN SCHEMA %s(?:, %s)* )?)(.*)$"
    % (_IDENT, _IDENT, _IDENT, _IDENT)
)
_SESSION = re.compile(r"^(SET SESSION AUTHORIZATION )('(?:[^']|'')*'|%s)(;.*)$" % _IDENT)
_SCRIPT_STARTS = ("ALTER ", "GRANT ", "REVOKE ", "SET SESSION AUTHORIZATION ")


def _identifier_name(token):
    if token.startswith('"'):
        return token[1:-1].replace('""', '"')
    return token.lower()


def _rename_token(token, mapping):
    name = _identifier_name(token)
    if token.upper() == "PUBLIC" or name not in mapping:
        return token
    return quote_ident(mapping[name])


def _rename_list(text, mapping):
    return ", ".join(_rename_token(token, mapping) for token in re.findall(_IDENT, text))


def _rename_grant(line, mapping):
    match = _GRANTEES.match(line)
    if not match:
        return line
    tail = _GRANTED_BY.sub(
        lambda found: found.group(1) + _rename_token(found.group(2), mapping), match.group(3)
    )
    return match.group(1) + _rename_list(match.group(2), mapping) + tail


def rename_statement(line, mapping):
    """One pg_dump statement line with the roles of `mapping` renamed (other lines as they are)."""
    match = _DEFAULT_PRIVILEGES.match(line)
    if match:
        return (
            match.group(1)
            + _rename_list(match.group(2), mapping)
            + match.group(3)
            + _rename_grant(match.group(4), mapping)
        )
    match = _OWNER.match(line)
    if match:
        return match.group(1) + _rename_token(match.group(2), mapping) + match.group(3)
    match = _SESSION.match(line)
    if match:
        token = match.group(2)
        if token.startswith("'"):
            name = token[1:-1].replace("''", "'")
            token = "'%s'" % renamed(name, mapping).replace("'", "''") if name in mapping else token
        else:
            token = _rename_token(token, mapping)
        return match.group(1) + token + match.group(3)
    if line.startswith(("GRANT ", "REVOKE ")):
        return _rename_grant(line, mapping)
    return line


def default_privilege_lines(script):
    """The ALTER DEFAULT PRIVILEGES statements of a pg_dump script (its post-data section has them)."""
    found = []

    def keep(line):
        found.append(line)

    _schema_options.rewrite_statement_lines(script, ("ALTER DEFAULT PRIVILEGES ",), keep)
    return found


def rename_script(script, mapping):
    """The pg_dump script with the roles of `mapping` renamed wherever it names a role
    (owners, grants, default privileges, session authorization); function bodies untouched."""
    if not mapping:
        return script
    return _schema_options.rewrite_statement_lines(
        script, _SCRIPT_STARTS, lambda line: rename_statement(line, mapping)
    )


# -- claims on the target --------------------------------------------------------------


def _claims_exist(conn):
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL AS x", (CLAIMS_TABLE,)).fetchone()["x"]


def read_claims(conn):
    """{(kind, name): instance} of every claim on the target (the maintenance database)."""
    if not _claims_exist(conn):
        return {}
    rows = conn.execute("SELECT kind, name, instance FROM odoo_migration.tenant_claim").fetchall()
    return dict(((row["kind"], row["name"]), row["instance"]) for row in rows)


def _names(conn, sql, names):
    """The subset of `names` a catalog query (one ANY(%s) parameter, column `name`) returns."""
    return set(row["name"] for row in conn.execute(sql, (list(names),)).fetchall())


def collisions(conn, instance, databases, roles, source_roles=None):
    """What stands in the way of `instance` moving `databases` with `roles` (target names) to
    this target: [{kind, name, holder, problem, fix}]. source_roles: {target name: source name}."""
    claims = read_claims(conn)
    source_roles = source_roles or {}
    found = []
    existing = _names(
        conn, "SELECT datname::text AS name FROM pg_database WHERE datname = ANY(%s)", databases
    )
    for database in databases:
        holder = claims.get((DATABASE, database))
        if holder == instance:
            continue
        if holder is not None:
            found.append(
                dict(
                    kind=DATABASE,
                    name=database,
                    holder=holder,
                    problem="database %s on the target belongs to instance %s" % (database, holder),
                    fix="move %s to another target server, or rename the database on its VM (ALTER DATABASE "
                    "... RENAME, and in its Odoo configuration) and discover it again" % instance,
                )
            )
        elif database in existing:
            found.append(
                dict(
                    kind=DATABASE,
                    name=database,
                    holder=None,
                    problem="database %s already exists on the target and no migrated instance claims it"
                    % database,
                    fix="DROP DATABASE %s on the target if it is a leftover, or move %s to another target"
                    % (quote_ident(database), instance),
                )
            )
    superusers = _names(
        conn, "SELECT rolname::text AS name FROM pg_roles WHERE rolsuper AND rolname = ANY(%s)", roles
    )
    for role in roles:
        holder = claims.get((ROLE, role))
        source = source_roles.get(role, role)
        suggestion = "in plan.yml, target_roles: {%s: %s}" % (source, instance_role_name(source, instance))
        if holder is not None and holder != instance:
            found.append(
                dict(
                    kind=ROLE,
                    name=role,
                    holder=holder,
                    problem="role %s on the target belongs to instance %s (this instance's %s would be it)"
                    % (role, holder, source),
                    fix="give %s of %s its own name on the target: %s" % (source, instance, suggestion),
                )
            )
        elif role in superusers:
            found.append(
                dict(
                    kind=ROLE,
                    name=role,
                    holder=None,
                    problem="role %s is a superuser on the target; an application must not run as one" % role,
                    fix="map %s to a role of its own: %s" % (source, suggestion),
                )
            )
    return found


def describe(found):
    return "; ".join("%s (fix: %s)" % (item["problem"], item["fix"]) for item in found)


def claim(conn, instance, databases, roles):
    """Claim the names for `instance` in one transaction; raise TenancyError (claiming nothing)
    when another instance holds one already. Returns the names claimed by this call."""
    wanted = [(DATABASE, name) for name in databases] + [(ROLE, name) for name in roles]
    with conn.transaction():
        # Instances of one wave claim side by side: CREATE ... IF NOT EXISTS is not safe against a
        # concurrent creation, so claims on a target take turns.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('odoo_migration:tenant_claim'))")
        conn.execute(CLAIMS_SQL)
        before = read_claims(conn)
        for kind, name in wanted:
            conn.execute(
                "INSERT INTO odoo_migration.tenant_claim (kind, name, instance) VALUES (%s, %s, %s)"
                " ON CONFLICT (kind, name) DO NOTHING",
                (kind, name, instance),
            )
        after = read_claims(conn)
        taken = [
            (kind, name, after[(kind, name)]) for kind, name in wanted if after[(kind, name)] != instance
        ]
        if taken:
            raise TenancyError(
                "; ".join("%s %s belongs to instance %s" % item for item in taken)
                + ": nothing was claimed for %s" % instance
            )
    return ["%s %s" % (kind, name) for kind, name in wanted if (kind, name) not in before]


def release_database(conn, instance, database):
    """Forget the claim of `instance` on a database it removed; True when there was one."""
    if not _claims_exist(conn):
        return False
    row = conn.execute(
        "DELETE FROM odoo_migration.tenant_claim WHERE kind = 'database' AND name = %s AND instance = %s"
        " RETURNING name",
        (database, instance),
    ).fetchone()
    return row is not None


# -- who may connect -------------------------------------------------------------------

CONNECT_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a"
    " WHERE d.datname = %s AND a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connects"
)


def connect_statements(conn, database, roles):
    """Statements that let only `roles` (and superusers) connect to `database` on the target."""
    statements = []
    public = conn.execute(CONNECT_SQL, (database,)).fetchone()["public_connects"]
    if public:
        statements.append("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC" % quote_ident(database))
    existing = _names(conn, "SELECT rolname::text AS name FROM pg_roles WHERE rolname = ANY(%s)", roles)
    for role in roles:
        allowed = (
            role in existing
            and conn.execute(
                "SELECT has_database_privilege(%s, %s, 'CONNECT') AS x", (role, database)
            ).fetchone()["x"]
        )
        if public or not allowed:
            statements.append(
                "GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s" % (quote_ident(database), quote_ident(role))
            )
    return statements
