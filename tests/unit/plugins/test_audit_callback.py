"""The audit callback keeps what modules return under `journal` in the host's journal."""

from types import SimpleNamespace

from ansible_collections.sysgenpro.odoo_migration.plugins.callback import audit
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils._journal import read_journal


def _result(host, payload, no_log=False):
    task = SimpleNamespace(_uuid="t1", no_log=no_log, action="sysgenpro.odoo_migration.pg_logical_migration")
    task.get_name = lambda: "replicate | Copy each database"
    return SimpleNamespace(_host=SimpleNamespace(get_name=lambda: host), _task=task, _result=payload)


def test_loop_items_journal_entries_become_the_records_details(tmp_path):
    (tmp_path / "vm1").mkdir()
    callback = audit.CallbackModule()
    callback._state_dir = str(tmp_path)
    dropped = {
        "database": "acme",
        "schema_options_dropped": [{"scope": "column", "option": "pg_attver", "objects": 9}],
    }
    callback.v2_runner_on_ok(
        _result("vm1", {"changed": True, "results": [{"journal": dropped}, {"changed": False}]})
    )
    callback.v2_runner_on_ok(_result("vm1", {"changed": False, "journal": {"secret": "x"}}, no_log=True))
    records = read_journal(str(tmp_path / "vm1" / "journal.jsonl"))
    assert records[0]["details"] == [dropped]
    assert "details" not in records[1]


def test_a_result_without_journal_adds_nothing():
    assert audit.journal_details({"changed": True, "results": [{"x": 1}]}) == []
