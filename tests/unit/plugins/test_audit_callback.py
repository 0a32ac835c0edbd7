"""The audit callback keeps what modules return under `journal` in the host's journal."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from ansible_collections.sysgenpro.odoo_migration.plugins.callback import audit
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit.journal import read_journal


def _result(host, payload, no_log=False):
    task = SimpleNamespace(_uuid="t1", no_log=no_log, action="sysgenpro.odoo_migration.pg_logical_migration")
    task.get_name = lambda: "replicate | Copy each database"
    return SimpleNamespace(_host=SimpleNamespace(get_name=lambda: host), _task=task, _result=payload)


def test_loop_items_journal_entries_become_the_records_details(tmp_path):
    (tmp_path / "vm1").mkdir()
    callback = audit.CallbackModule()
    callback._configured_state_dir = str(tmp_path)
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


REPO = Path(__file__).resolve().parents[3]


def _playbook_run(tmp_path, inventory_vars, extra=(), play="play.yml"):
    """ansible-playbook on localhost with the collection's audit callback, as an operator runs it."""
    (tmp_path / "group_vars").mkdir(exist_ok=True)
    (tmp_path / "inventory.ini").write_text("[legacy]\nvm-under-audit ansible_connection=local\n")
    (tmp_path / "group_vars" / "legacy.yml").write_text(inventory_vars)
    (tmp_path / "play.yml").write_text(
        "- hosts: legacy\n  gather_facts: false\n  tasks:\n"
        "    - name: Say something with a password in it\n"
        "      ansible.builtin.fail:\n"
        "        msg: connect failed for postgresql://odoo:hunter2@db/acme password=hunter2\n"
        "      ignore_errors: true\n"
    )
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env.pop("ODOO_MIGRATION_STATE_DIR", None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "inventory.ini"),
         str(tmp_path / play), *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_journal_goes_where_the_inventory_keeps_the_state_and_masks_free_text(tmp_path):
    state = tmp_path / "elsewhere" / "state"
    (state / "vm-under-audit").mkdir(parents=True)
    run = _playbook_run(tmp_path, 'odoo_migration_state_dir: "{{ inventory_dir }}/elsewhere/state"\n')
    assert run.returncode == 0, run.stdout + run.stderr
    records = read_journal(str(state / "vm-under-audit" / "journal.jsonl"))
    assert [r["action"] for r in records] == ["task", "playbook"]
    assert records[0]["result"] == "failed (ignored)"
    assert (
        "hunter2" not in json.dumps(records) and "postgresql://odoo:********@db/acme" in records[0]["message"]
    )
    assert not (tmp_path / "migration-state").exists()


def test_a_state_directory_that_does_not_exist_is_an_error_not_silence(tmp_path):
    # The collection's own module ran for the host: its journal had nowhere to go, and that is said.
    (tmp_path / "ours.yml").write_text(
        "- hosts: legacy\n  gather_facts: false\n  tasks:\n"
        "    - name: Check a journal\n"
        "      sysgenpro.odoo_migration.audit_journal_info:\n"
        "        path: /nonexistent/journal.jsonl\n"
        "      delegate_to: localhost\n"
    )
    run = _playbook_run(tmp_path, "odoo_migration_state_dir: /nonexistent/state-dir\n", play="ours.yml")
    assert "the state directory /nonexistent/state-dir does not exist" in run.stdout + run.stderr
    # A play of other roles and modules only (the lab's own) expects no journal: nothing is said.
    other = _playbook_run(tmp_path, "odoo_migration_state_dir: /nonexistent/state-dir\n")
    assert "does not exist" not in other.stdout + other.stderr
