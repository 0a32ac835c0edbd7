# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Large objects of a migrated database, private.

Logical replication does not carry large objects (pg_largeobject is a catalog). The copy
engine copies them under the migration's snapshot, the cutover copies what changed since
inside its fence (old side fenced, so nothing writes them), and the compare checks each
one. One object is read whole (``lo_get``), so memory per object is its size; the
objects' total size adds to the fence (a pre-sync before the fence keeps only the last
changes in it). Both connections must be able to read every object (a superuser, or
``lo_compat_privileges``).

An object is identified by its OID on both sides (Odoo and other applications store the
OID in a column, which the replication copies as is). Owner and grants travel with it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    ident as quote_ident,
)

DIGESTS_SQL = (
    "SELECT m.oid::bigint AS oid, pg_get_userbyid(m.lomowner)::text AS owner, "
    "m.lomacl::text[] AS acl, md5(b.data) AS md5, length(b.data)::bigint AS bytes "
    "FROM pg_largeobject_metadata m CROSS JOIN LATERAL (SELECT lo_get(m.oid) AS data) b ORDER BY 1"
)
_ACL_ITEM = re.compile(r'^(?P<grantee>"(?:[^"]|"")*"|[^=]*)=(?P<privileges>[a-zA-Z*]*)/(?P<grantor>.*)$')
_PLAIN_ROLE = re.compile(r"^[a-z_][a-z0-9_]*$")
_PRIVILEGES = (("r", "SELECT"), ("w", "UPDATE"))


def _unquote_role(text):
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def _acl_role(text, role_map):
    name = _unquote_role(text)
    if not text or name not in role_map:
        return text
    target = role_map[name]
    return target if _PLAIN_ROLE.match(target) else quote_ident(target)


def rename(rows, role_map):
    """Digests ({oid: row}) with owners, grantees and grantors as the other side names them
    (role_map: this side's name -> the other side's)."""
    if not role_map:
        return rows
    renamed = {}
    for oid, row in rows.items():
        acl = []
        for item in row["acl"] or []:
            match = _ACL_ITEM.match(item)
            acl.append(
                "%s=%s/%s"
                % (
                    _acl_role(match.group("grantee"), role_map),
                    match.group("privileges"),
                    _acl_role(match.group("grantor"), role_map),
                )
                if match
                else item
            )
        renamed[oid] = dict(
            row, owner=role_map.get(row["owner"], row["owner"]), acl=acl if row["acl"] is not None else None
        )
    return renamed


def grant_statements(oid, acl):
    """GRANT statements that give the object the source's grants (None acl: the default)."""
    statements = []
    for item in acl or []:
        match = _ACL_ITEM.match(item)
        if not match:
            continue
        grantee = _unquote_role(match.group("grantee"))
        privileges = [name for letter, name in _PRIVILEGES if letter in match.group("privileges")]
        if privileges:
            statements.append(
                "GRANT %s ON LARGE OBJECT %d TO %s"
                % (", ".join(privileges), oid, quote_ident(grantee) if grantee else "PUBLIC")
            )
    return statements


def digests(conn):
    """{oid: {owner, acl, md5, bytes}} of every large object the connection sees."""
    return dict((row["oid"], row) for row in conn.execute(DIGESTS_SQL).fetchall())


def plan(old, new):
    """(to_copy, to_remove): OIDs whose content, owner or grants differ or that are missing on
    the new side, and OIDs only the new side has."""
    to_copy = sorted(
        oid
        for oid, row in old.items()
        if oid not in new
        or (new[oid]["md5"], new[oid]["owner"], sorted(new[oid]["acl"] or []))
        != (row["md5"], row["owner"], sorted(row["acl"] or []))
    )
    to_remove = sorted(oid for oid in new if oid not in old)
    return to_copy, to_remove


def differences(source, target, limit=20):
    """Compare entries for pg_compare: missing, extra or different large objects."""
    found = []
    to_copy, extra = plan(source, target)
    for oid in to_copy:
        if oid not in target:
            found.append(dict(kind="large_object_missing", oid=oid))
        else:
            what = [
                key
                for key in ("md5", "owner", "acl")
                if (sorted(source[oid][key] or []) if key == "acl" else source[oid][key])
                != (sorted(target[oid][key] or []) if key == "acl" else target[oid][key])
            ]
            found.append(dict(kind="large_object_differs", oid=oid, columns=what))
    found.extend(dict(kind="large_object_extra_on_target", oid=oid) for oid in extra)
    return found[:limit]


def write(old_conn, new_conn, oids, rows):
    """Copy the objects `oids` from old to new in one transaction of the new side: content
    (recreated under the same OID), owner, grants. Returns the bytes written."""
    written = 0
    with new_conn.transaction():
        for oid in oids:
            data = old_conn.execute("SELECT lo_get(%s::oid) AS data", (oid,)).fetchone()["data"]
            new_conn.execute(
                "SELECT lo_unlink(m.oid) FROM pg_largeobject_metadata m WHERE m.oid = %s::oid", (oid,)
            )
            new_conn.execute("SELECT lo_from_bytea(%s::oid, %s::bytea)", (oid, bytes(data)))
            new_conn.execute("ALTER LARGE OBJECT %d OWNER TO %s" % (oid, quote_ident(rows[oid]["owner"])))
            for statement in grant_statements(oid, rows[oid]["acl"]):
                new_conn.execute(statement)
            written += len(data)
    return written


def remove(new_conn, oids):
    with new_conn.transaction():
        for oid in oids:
            new_conn.execute(
                "SELECT lo_unlink(m.oid) FROM pg_largeobject_metadata m WHERE m.oid = %s::oid", (oid,)
            )
    return len(oids)


def sync(old_conn, new_conn, role_map=None):
    """Make the new side's large objects those of the old side (owners and grantees renamed
    by role_map, old side's name -> new side's); returns what was done."""
    old = rename(digests(old_conn), role_map)
    new = digests(new_conn)
    to_copy, to_remove = plan(old, new)
    written = write(old_conn, new_conn, to_copy, old) if to_copy else 0
    removed = remove(new_conn, to_remove) if to_remove else 0
    return dict(objects=len(old), copied=len(to_copy), removed=removed, bytes_copied=written)
