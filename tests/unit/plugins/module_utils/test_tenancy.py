"""Instances sharing a target: role names, the role map's checks, renaming in pg_dump scripts."""

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    large_objects as _large_objects,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import tenancy as _tenancy

MAP = {"odoo": "odoo_legacy_vm_2", "lab_reporting": "lab_reporting_legacy_vm_2"}


def test_role_names_come_from_the_instance_and_fit_postgresql():
    assert _tenancy.instance_role_name("odoo", "legacy-vm-2") == "odoo_legacy_vm_2"
    assert _tenancy.instance_role_name("erp", "Shop.Example.COM") == "erp_shop_example_com"
    long_name = _tenancy.instance_role_name("a" * 40, "b" * 40)
    assert len(long_name.encode()) == 63
    assert long_name != _tenancy.instance_role_name("a" * 40, "b" * 39 + "c")


def test_the_default_map_renames_the_application_role_and_group_roles_not_logins():
    roles = [
        {"name": "odoo", "can_login": True},
        {"name": "lab_reporting", "can_login": False},
        {"name": "lab_bi_legacy_vm_2", "can_login": True},
    ]
    assert _tenancy.default_role_map("legacy-vm-2", "odoo", roles) == MAP


@pytest.mark.parametrize(
    "mapping, problem",
    [
        ({"odoo": "x", "erp": "x"}, "erp, odoo all map to x"),
        ({"odoo": "pg_odoo"}, "reserved"),
        ({"odoo": "erp", "erp": "erp_2"}, "also a source role renamed"),
        ({"odoo": "o" * 64}, "at most 63 bytes"),
        ({"odoo": ""}, "non-empty"),
    ],
)
def test_a_role_map_that_cannot_work_is_refused_with_the_reason(mapping, problem):
    problems = _tenancy.role_map_problems(mapping)
    assert any(problem in text for text in problems), problems


def test_a_sound_map_has_no_problem():
    assert _tenancy.role_map_problems(MAP) == []
    assert _tenancy.role_map_problems({"odoo": "odoo"}) == []


SCRIPT = """\
CREATE SCHEMA lab_reporting;
ALTER SCHEMA lab_reporting OWNER TO lab_reporting;
CREATE TABLE public.res_partner (id integer NOT NULL);
ALTER TABLE public.res_partner OWNER TO odoo;
CREATE FUNCTION public.f() RETURNS void
    LANGUAGE plpgsql
    AS $_$
BEGIN
ALTER TABLE public.res_partner OWNER TO odoo;
END
$_$;
ALTER FUNCTION public.f() OWNER TO odoo;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA lab_reporting TO lab_reporting, lab_bi_legacy_vm_2;
GRANT SELECT(id) ON TABLE public.res_partner TO "lab_reporting" WITH GRANT OPTION;
REVOKE SELECT ON TABLE public.res_partner FROM odoo;
ALTER DEFAULT PRIVILEGES FOR ROLE odoo IN SCHEMA public GRANT SELECT ON TABLES TO lab_reporting;
SET SESSION AUTHORIZATION 'odoo';
GRANT SELECT ON TABLE public."odoo TO x" TO lab_bi_legacy_vm_2;
RESET SESSION AUTHORIZATION;
-- Name: res_partner; Type: TABLE; Schema: public; Owner: odoo
"""


def test_the_schema_script_names_the_targets_roles_wherever_it_names_a_role():
    renamed = _tenancy.rename_script(SCRIPT, MAP).split("\n")
    assert 'ALTER SCHEMA lab_reporting OWNER TO "lab_reporting_legacy_vm_2";' in renamed
    assert 'ALTER TABLE public.res_partner OWNER TO "odoo_legacy_vm_2";' in renamed
    assert 'ALTER FUNCTION public.f() OWNER TO "odoo_legacy_vm_2";' in renamed
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC;" in renamed
    assert (
        'GRANT USAGE ON SCHEMA lab_reporting TO "lab_reporting_legacy_vm_2", lab_bi_legacy_vm_2;' in renamed
    )
    assert (
        'GRANT SELECT(id) ON TABLE public.res_partner TO "lab_reporting_legacy_vm_2" WITH GRANT OPTION;'
        in renamed
    )
    assert 'REVOKE SELECT ON TABLE public.res_partner FROM "odoo_legacy_vm_2";' in renamed
    assert (
        'ALTER DEFAULT PRIVILEGES FOR ROLE "odoo_legacy_vm_2" IN SCHEMA public GRANT SELECT ON TABLES '
        'TO "lab_reporting_legacy_vm_2";' in renamed
    )
    assert "SET SESSION AUTHORIZATION 'odoo_legacy_vm_2';" in renamed
    # Object names that look like a grantee are left alone; so are function bodies and comments.
    assert 'GRANT SELECT ON TABLE public."odoo TO x" TO lab_bi_legacy_vm_2;' in renamed
    assert renamed.count("ALTER TABLE public.res_partner OWNER TO odoo;") == 1
    assert "-- Name: res_partner; Type: TABLE; Schema: public; Owner: odoo" in renamed


def test_without_a_map_the_script_is_unchanged():
    assert _tenancy.rename_script(SCRIPT, {}) == SCRIPT


def test_large_objects_carry_the_targets_owner_and_grantees():
    rows = {
        7: {
            "md5": "a",
            "owner": "odoo",
            "acl": ["odoo=rw/odoo", "lab_reporting=r/odoo", "=r/odoo"],
            "bytes": 1,
        }
    }
    renamed = _large_objects.rename(rows, MAP)[7]
    assert renamed["owner"] == "odoo_legacy_vm_2"
    assert renamed["acl"] == [
        "odoo_legacy_vm_2=rw/odoo_legacy_vm_2",
        "lab_reporting_legacy_vm_2=r/odoo_legacy_vm_2",
        "=r/odoo_legacy_vm_2",
    ]
    assert _large_objects.grant_statements(7, renamed["acl"])[1] == (
        'GRANT SELECT ON LARGE OBJECT 7 TO "lab_reporting_legacy_vm_2"'
    )
    # Compared against the target's rows, renamed objects are equal.
    target = {7: dict(rows[7], owner="odoo_legacy_vm_2", acl=renamed["acl"])}
    assert _large_objects.plan(_large_objects.rename(rows, MAP), target) == ([], [])


def test_default_privileges_are_picked_from_the_post_data_section():
    post_data = (
        "CREATE INDEX item_note ON public.item USING btree (note);\n"
        "ALTER DEFAULT PRIVILEGES FOR ROLE odoo IN SCHEMA public GRANT SELECT ON TABLES TO reporting;\n"
        "-- ALTER DEFAULT PRIVILEGES in a comment\n"
    )
    assert _tenancy.default_privilege_lines(post_data) == [
        "ALTER DEFAULT PRIVILEGES FOR ROLE odoo IN SCHEMA public GRANT SELECT ON TABLES TO reporting;"
    ]
