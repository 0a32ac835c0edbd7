# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logins a subscription replicates as: one per direction and instance, made for the migration.

Each has LOGIN REPLICATION and CONNECT on the databases it follows, nothing else; its password is
sent as a SCRAM verifier. A comment on the role marks it as ours, so nothing else is ever dropped."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg

try:
    from psycopg import sql as _sql
except ImportError:  # reported through _pg.HAS_PSYCOPG
    _sql = None

REPLICATION_LOGIN_COMMENT = "odoo-migration-replication-login"
REPLICATION_LOGIN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validate(login, option):
    """A login given as {name, password}: the problem in words naming the option, or None."""
    if not REPLICATION_LOGIN_NAME.match(login.get("name") or ""):
        return "%s.name %r is not a PostgreSQL role name of lower-case letters, digits and _" % (
            option,
            login.get("name"),
        )
    if not login.get("password"):
        return "%s.password is empty: give the login a password" % option
    return None


def is_replication_login(side, name):
    """Whether role name exists on side and carries this migration's mark (only those are dropped)."""
    return bool(
        side.one(
            "reading login %s" % name,
            "SELECT 1 AS x FROM pg_roles r"
            " WHERE r.rolname = %s AND shobj_description(r.oid, 'pg_authid') = %s",
            (name, REPLICATION_LOGIN_COMMENT),
        )
    )


def _set_login(side, verb, name, password):
    """CREATE or ALTER the role as a replication login whose password is a SCRAM verifier made here."""
    side.run(
        "%s login %s" % ("creating" if verb == "CREATE" else "updating", name),
        _sql.SQL(verb + " ROLE {} LOGIN REPLICATION PASSWORD {}").format(
            _sql.Identifier(name), _sql.Literal(_pg.scram_verifier(password))
        ),
        secret=True,
    )


def ensure_replication_login(side, name, password, option="return_login", check_mode=False):
    """A path's own login on its publisher, allowed to connect to this database. Returns what changed
    ([] when nothing); in check mode, what would change, and nothing is written."""
    done = []
    role = side.one(
        "reading login %s" % name,
        "SELECT r.rolsuper, r.rolreplication, r.rolcanlogin, a.rolpassword,"
        " shobj_description(r.oid, 'pg_authid') AS comment"
        " FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = %s",
        (name,),
    )
    ident = _sql.Identifier(name)
    if role is None:
        if check_mode:
            return ["login %s would be created" % name, "login %s would be allowed to connect" % name]
        _set_login(side, "CREATE", name, password)
        side.run(
            "marking login %s" % name,
            _sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, _sql.Literal(REPLICATION_LOGIN_COMMENT)),
        )
        done.append("login %s created" % name)
    else:
        if role["comment"] != REPLICATION_LOGIN_COMMENT or role["rolsuper"]:
            raise _pg.PgError(
                "role %s exists on the %s and is not a replication login of this migration; give the "
                "path another login name (%s.name)" % (name, side.describe(), option)
            )
        if not (role["rolreplication"] and role["rolcanlogin"]) or not _pg.scram_matches(
            role["rolpassword"], password
        ):
            done.append("login %s %s" % (name, "would be updated" if check_mode else "updated"))
            if check_mode:
                return done
            _set_login(side, "ALTER", name, password)
    if not side.one(
        "reading CONNECT of %s" % name,
        "SELECT has_database_privilege(%s, current_database(), 'CONNECT') AS ok",
        (name,),
    )["ok"]:
        done.append("login %s %s" % (name, "would be allowed to connect" if check_mode else "may connect"))
        if check_mode:
            return done
        side.run(
            "letting login %s connect" % name,
            _sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                _sql.Identifier(
                    side.one("reading the database", "SELECT current_database() AS name")["name"]
                ),
                ident,
            ),
        )
    return done


def drop_replication_login(side, name):
    """Let a path's login go from this database, and drop it when no other database grants
    it anything. Returns 'dropped', 'kept' (another database still grants it) or None (absent or not ours)."""
    if not is_replication_login(side, name):
        return None
    database = side.one("reading the database", "SELECT current_database() AS name")["name"]
    side.run(
        "revoking CONNECT from %s" % name,
        _sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
            _sql.Identifier(database), _sql.Identifier(name)
        ),
    )
    try:
        with side.conn.transaction():
            side.conn.execute(_sql.SQL("DROP ROLE {}").format(_sql.Identifier(name)))
    except _pg.psycopg.errors.DependentObjectsStillExist:
        return "kept"
    return "dropped"
