"""Pure parts of the write hold: the REVOKE and GRANT it generates and the counts it reports."""

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    write_hold as _write_hold,
)


def privilege(schema, relation, kind, role, name):
    return dict(schema=schema, relation=relation, kind=kind, role=role, privilege=name)


ROWS = [
    privilege("public", "res_partner", "r", "odoo_acme", "INSERT"),
    privilege("public", "res_partner", "r", "odoo_acme", "UPDATE"),
    privilege("public", "res_partner_id_seq", "S", "odoo_acme", "USAGE"),
    privilege("public", "res_partner_id_seq", "S", "odoo_acme", "UPDATE"),
    privilege("Odd Schema", 'we"ird', "r", "odoo_acme", "DELETE"),
]


def test_revoke_takes_each_relations_privileges_in_one_statement_and_quotes_every_name():
    assert _write_hold.revoke_statements(ROWS) == [
        'REVOKE DELETE ON TABLE "Odd Schema"."we""ird" FROM "odoo_acme"',
        'REVOKE INSERT, UPDATE ON TABLE "public"."res_partner" FROM "odoo_acme"',
        'REVOKE USAGE, UPDATE ON SEQUENCE "public"."res_partner_id_seq" FROM "odoo_acme"',
    ]


def test_grant_gives_back_exactly_what_was_revoked():
    revoked = _write_hold.revoke_statements(ROWS)
    granted = _write_hold.grant_statements(ROWS)
    assert [g.replace("GRANT", "REVOKE", 1).replace(" TO ", " FROM ") for g in granted] == revoked


def test_a_privilege_recorded_twice_is_given_back_once():
    assert _write_hold.grant_statements(ROWS[:1] * 2) == [
        'GRANT INSERT ON TABLE "public"."res_partner" TO "odoo_acme"'
    ]


def test_summary_counts_relations_not_privileges():
    assert _write_hold.summary(ROWS) == {"odoo_acme": {"tables": 2, "sequences": 1}}
    assert _write_hold.summary([]) == {}


def test_the_holds_table_is_a_helper_table_on_both_sides():
    # The return path publishes FOR ALL TABLES: the source must have the table too.
    assert "write_holds" in _cutover.HELPER_TABLES
    assert _write_hold.HOLDS_DDL in _cutover.HELPER_DDL


@pytest.mark.parametrize("stage, direction", [("window", "forward"), ("prepare", "reverse")])
def test_a_stage_that_does_not_exist_or_does_not_fit_the_direction_is_refused(stage, direction):
    endpoint = _cutover._pg.PgEndpoint(host="127.0.0.1", database="acme")
    with pytest.raises(_cutover._pg.PgError, match="stage"):
        _cutover.Cutover(endpoint, endpoint, ["odoo"], direction=direction, stage=stage)
