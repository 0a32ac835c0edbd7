"""Large objects: what a sync copies, what the compare reports, the grants it recreates."""

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import large_objects as lo


def row(md5, owner="odoo", acl=None, size=10):
    return {"md5": md5, "owner": owner, "acl": acl, "bytes": size}


def test_plan_copies_missing_and_changed_objects_and_removes_extra_ones():
    old = {1: row("a"), 2: row("b"), 3: row("c", acl=["odoo=rw/odoo", "bi=r/odoo"])}
    new = {1: row("a"), 2: row("B"), 3: row("c", acl=["odoo=rw/odoo"]), 9: row("z")}
    assert lo.plan(old, new) == ([2, 3], [9])
    assert lo.plan(old, dict(old)) == ([], [])


def test_differences_name_each_object_and_what_differs():
    source = {1: row("a"), 2: row("b", owner="odoo"), 3: row("c")}
    target = {2: row("b", owner="postgres"), 3: row("c"), 4: row("d")}
    found = lo.differences(source, target)
    assert {"kind": "large_object_missing", "oid": 1} in found
    assert {"kind": "large_object_differs", "oid": 2, "columns": ["owner"]} in found
    assert {"kind": "large_object_extra_on_target", "oid": 4} in found
    assert len(found) == 3


def test_grants_follow_the_acl_items():
    statements = lo.grant_statements(16400, ["odoo=rw/odoo", '"BI tool"=r/odoo', "=r/odoo"])
    assert statements == [
        'GRANT SELECT, UPDATE ON LARGE OBJECT 16400 TO "odoo"',
        'GRANT SELECT ON LARGE OBJECT 16400 TO "BI tool"',
        "GRANT SELECT ON LARGE OBJECT 16400 TO PUBLIC",
    ]
    assert lo.grant_statements(16400, None) == []
