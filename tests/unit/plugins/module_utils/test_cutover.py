"""Pure parts of the cutover engine: names, budgets and the step clock, sequence SQL, the guard, redaction."""

import importlib
import json
import socket

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_slot_names_follow_the_shared_convention():
    assert _cutover.forward_slot("Shop") == "odoo_migration_shop"
    assert _cutover.reverse_slot("acme-prod") == "odoo_migration_reverse_acme_prod"
    assert len(_cutover.forward_slot("x" * 100)) == 63


def test_paths_and_sides_mirror_each_other():
    in_use, back = _cutover.paths("forward", "shop")
    assert (in_use["publisher"], in_use["subscription"], in_use["slot"]) == (
        "source",
        "odoo_migration",
        "odoo_migration_shop",
    )
    assert (back["publisher"], back["subscriber"], back["publication"]) == (
        "target",
        "source",
        "odoo_migration_reverse",
    )
    assert back["slot"] == "odoo_migration_reverse_shop"
    assert _cutover.paths("reverse", "shop") == (back, in_use)
    assert _cutover.sides("forward") == ("source", "target")
    assert _cutover.sides("reverse") == ("target", "source")
    with pytest.raises(ValueError):
        _cutover.paths("sideways", "shop")


def test_budgets_merge_and_refuse_nonsense():
    merged = _cutover.merge_budgets({"drain": 3, "total": "12.5"})
    assert merged["drain"] == 3.0 and merged["total"] == 12.5 and merged["fence"] == 10.0
    with pytest.raises(ValueError, match="unknown budget"):
        _cutover.merge_budgets({"coffee": 1})
    with pytest.raises(ValueError, match="more than 0"):
        _cutover.merge_budgets({"drain": 0})
    with pytest.raises(ValueError, match="number"):
        _cutover.merge_budgets({"drain": "soon"})


def test_grace_must_fit_in_the_fence_budget():
    budgets = _cutover.merge_budgets({"fence": 3})
    assert _cutover.validate_plan(budgets, 2) == []
    assert "less than the fence budget" in _cutover.validate_plan(budgets, 3)[0]
    assert _cutover.validate_plan(budgets, -1)


def test_step_planning_per_direction():
    budgets = _cutover.merge_budgets()
    forward = [s["step"] for s in _cutover.plan_steps("forward", budgets)]
    assert forward == [step for step in _cutover.STEPS if step != "snapshots"]
    held = _cutover.plan_steps("forward", budgets, export_snapshots=True)
    assert [s["step"] for s in held] == list(_cutover.STEPS)
    # The snapshots of the fence instant are taken inside the window, after the sequences.
    assert [s for s in held if s["step"] == "snapshots"][0]["in_window"]
    reverse = [s["step"] for s in _cutover.plan_steps("reverse", budgets)]
    assert "return_path" not in reverse and reverse[-2:] == ["drop_path", "unfence"]
    assert "return_path" in [
        s["step"] for s in _cutover.plan_steps("reverse", budgets, reestablish_forward=True)
    ]
    in_window = [s["step"] for s in _cutover.plan_steps("forward", budgets) if s["in_window"]]
    assert in_window[0] == "fence" and "gate" not in in_window


def test_step_clock_records_and_enforces_budgets():
    clock = FakeClock()
    timer = _cutover.StepClock(_cutover.merge_budgets({"marker": 1, "total": 5}), clock=clock)
    timer.start("gate")
    clock.now += 2
    timer.finish()
    assert timer.window_seconds() == 0.0  # the window starts with the fence
    timer.start("fence")
    clock.now += 1
    timer.finish()
    timer.start("marker")
    clock.now += 1.5
    with pytest.raises(_cutover.BudgetExceeded, match="marker took 1.500 s"):
        timer.finish()
    assert timer.records[-1]["ok"] is False and timer.records[-1]["over_budget"]
    assert timer.window_seconds() == 2.5
    timer.start("drain")
    clock.now += 3
    with pytest.raises(_cutover.BudgetExceeded, match="total budget"):
        timer.check()
    assert [r["step"] for r in timer.records] == ["gate", "fence", "marker"]


def test_step_clock_deadline_is_the_earlier_of_step_and_window():
    clock = FakeClock()
    timer = _cutover.StepClock(_cutover.merge_budgets({"fence": 10, "drain": 10, "total": 4}), clock=clock)
    timer.start("fence")
    clock.now += 3
    timer.finish()
    timer.start("drain")
    assert timer.remaining() == pytest.approx(1.0)


def test_wait_until_gives_up_at_the_deadline(monkeypatch):
    clock = FakeClock()
    timer = _cutover.StepClock(_cutover.merge_budgets({"drain": 1}), clock=clock)
    timer.start("drain")
    monkeypatch.setattr(_cutover.time, "sleep", lambda seconds: setattr(clock, "now", clock.now + 0.5))
    with pytest.raises(_cutover.BudgetExceeded):
        _cutover.wait_until(lambda: False, timer, what="marker")
    clock.now = 100.0
    timer.start("drain")
    assert _cutover.wait_until(lambda: "seen", timer) == "seen"


SEQUENCES = [
    {"schema": "public", "name": "res_partner_id_seq"},
    {"schema": "public", "name": "ir_sequence_001"},
    {"schema": "we'ird", "name": 'Se"q'},
]


def test_sequence_read_sql_quotes_every_name_and_batches():
    statements = _cutover.sequence_read_statements(SEQUENCES, batch=2)
    assert len(statements) == 2
    assert statements[0].count("UNION ALL") == 1
    assert 'FROM "public"."ir_sequence_001"' in statements[0]
    expected = "SELECT 'we''ird'::text AS schema, 'Se\"q'::text AS name, last_value, is_called"
    assert statements[1].startswith(expected)
    assert statements[1].endswith('FROM "we\'ird"."Se""q"')


def test_setval_statement_keeps_is_called_and_standalone_sequences():
    values = [
        {"schema": "public", "name": "res_partner_id_seq", "last_value": 812, "is_called": True},
        {"schema": "public", "name": "ir_sequence_001", "last_value": 1, "is_called": False},
    ]
    statement, params = _cutover.setval_statement(values)
    assert (
        "setval(format('%I.%I', s, n)::regclass, v, c)" in statement % ("a", "b", "c", "d")
        or "%%I" in statement
    )
    assert params == (
        ["public", "public"],
        ["res_partner_id_seq", "ir_sequence_001"],
        [812, 1],
        [True, False],
    )


def test_sequence_position_and_guard():
    assert _cutover.sequence_position(10, True) == 10
    assert _cutover.sequence_position(10, False) == 9
    assert _cutover.sequence_position(10, False, increment=5) == 5
    owned = [
        {
            "schema": "public",
            "name": "a_id_seq",
            "table_schema": "public",
            "table_name": "a",
            "column_name": "id",
        },
        {
            "schema": "public",
            "name": "b_id_seq",
            "table_schema": "public",
            "table_name": "b",
            "column_name": "id",
        },
        {
            "schema": "public",
            "name": "c_id_seq",
            "table_schema": "public",
            "table_name": "c",
            "column_name": "id",
        },
        {
            "schema": "public",
            "name": "d_id_seq",
            "table_schema": "public",
            "table_name": "d",
            "column_name": "id",
        },
        {
            "schema": "public",
            "name": "e_id_seq",
            "table_schema": "public",
            "table_name": "e",
            "column_name": "id",
        },
    ]
    values = {
        ("public", "a_id_seq"): {"last_value": 10, "is_called": True, "increment": 1},
        ("public", "b_id_seq"): {"last_value": 10, "is_called": False, "increment": 1},
        ("public", "c_id_seq"): {"last_value": 1, "is_called": False, "increment": 1},
        ("public", "e_id_seq"): {"last_value": -5, "is_called": True, "increment": -1},
    }
    maxima = {0: 10, 1: 10, 2: None, 3: 7, 4: 100}
    violations = _cutover.guard_violations(owned, maxima, values)
    assert [v["sequence"] for v in violations] == ['"public"."b_id_seq"', '"public"."d_id_seq"']
    assert violations[0]["position"] == 9 and violations[0]["column_max"] == 10
    assert violations[1]["problem"] == "not copied"


def test_guard_sql_reads_max_of_each_owned_column():
    owned = [
        {"schema": "public", "name": "s", "table_schema": "public", "table_name": "T", "column_name": "id"}
    ]
    assert _cutover.guard_statements(owned) == ['SELECT 0 AS i, max("id")::numeric AS max FROM "public"."T"']


@pytest.mark.parametrize(
    "conninfo, secret",
    [
        ("host=pg18 user=postgres password=s3cret dbname=acme", "s3cret"),
        ("host=pg18 password = 'it\\'s x' dbname=acme", "it's x"),
        ("postgresql://postgres:p%40ss@pg18:5432/acme", "p%40ss"),
        ("postgresql://pg18/acme?user=postgres&password=qwerty", "qwerty"),
    ],
)
def test_conninfo_passwords_are_found_and_redacted(conninfo, secret):
    assert secret in _cutover.conninfo_passwords(conninfo)
    redacted = _cutover.redact_conninfo(conninfo)
    assert secret not in redacted and _pg.REDACTED in redacted
    assert "pg18" in redacted


def test_uri_passwords_are_also_found_decoded():
    found = _cutover.conninfo_passwords("postgresql://postgres:p%40ss@pg18/acme")
    assert "p@ss" in found
    assert _pg.redact("cannot connect with p@ss", found) == "cannot connect with ********"


def test_no_conninfo_no_secret():
    assert _cutover.conninfo_passwords(None) == []
    assert _cutover.redact_conninfo(None) is None


def test_cutover_refuses_bad_options_before_connecting():
    source = _pg.PgEndpoint("127.0.0.1", "shop", password="pw")
    with pytest.raises(_pg.PgError, match="grace_seconds"):
        _cutover.Cutover(source, source, ["odoo"], grace_seconds=20)
    with pytest.raises(_pg.PgError, match="direction"):
        _cutover.Cutover(source, source, ["odoo"], direction="up")
    with pytest.raises(_pg.PgError, match="unknown budget"):
        _cutover.Cutover(source, source, ["odoo"], budgets={"nap": 1})


def test_cutover_report_never_carries_conninfo_passwords():
    source = _pg.PgEndpoint("127.0.0.1", "shop", password="pw")
    cut = _cutover.Cutover(
        source,
        source,
        ["odoo"],
        target_conninfo_from_source="host=t user=postgres password=hunter2 dbname=shop",
    )
    assert "hunter2" in cut.secrets
    assert "hunter2" not in repr(cut.report)
    assert cut.report["return_path_conninfo"] == "host=t user=postgres password=******** dbname=shop"


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("module_name", ["pg_cutover", "pg_compare", "pg_migration_finalize"])
def test_modules_fail_without_secrets_when_the_server_is_unreachable(module_name, capsys):
    module = importlib.import_module(
        "ansible_collections.sysgenpro.odoo_migration.plugins.modules." + module_name
    )
    port = _closed_port()
    args = {
        "source": {"host": "127.0.0.1", "port": port, "password": "src-s3cret", "database": "shop"},
        "target": {"host": "127.0.0.1", "port": port, "password": "tgt-s3cret"},
    }
    if module_name == "pg_cutover":
        args.update(application_roles=["odoo"], target_conninfo_from_source="host=x password=conn-s3cret")
    with patch_module_args(args), pytest.raises(SystemExit) as leaving:
        module.main()
    output = capsys.readouterr().out
    result = json.loads(output)
    assert leaving.value.code == 1 and result["failed"]
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in result["msg"]
    for secret in ("src-s3cret", "tgt-s3cret", "conn-s3cret"):
        assert secret not in output
