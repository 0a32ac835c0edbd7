"""The journal verifier: reads the whole chain, names the first bad line, writes nothing."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit import journal as _journal
from ansible_collections.sysgenpro.odoo_migration.plugins.modules import audit_journal_info


def run(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as leaving:
        audit_journal_info.main()
    return leaving.value.code, json.loads(capsys.readouterr().out)


def test_an_intact_journal_is_reported_with_its_last_record(tmp_path, capsys):
    (tmp_path / "vm1").mkdir()
    path = tmp_path / "vm1" / "journal.jsonl"
    for action in ("discover", "replicate", "cutover"):
        _journal.append_event(str(path), {"action": action})
    before = path.read_bytes()
    code, result = run({"state_dir": str(tmp_path), "host": "vm1"}, capsys)
    assert code == 0 and result["intact"] and result["records"] == 3 and result["last_seq"] == 2
    assert result["changed"] is False and path.read_bytes() == before


def test_a_broken_journal_fails_naming_its_first_bad_line(tmp_path, capsys):
    path = tmp_path / "journal.jsonl"
    for action in ("discover", "replicate", "cutover", "finalize"):
        _journal.append_event(str(path), {"action": action})
    lines = path.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["action"] = "nothing happened"
    lines[2] = json.dumps(edited)
    path.write_text("\n".join(lines) + "\n")
    code, result = run({"path": str(path)}, capsys)
    assert code == 1 and result["first_bad_line"] == 3
    assert result["msg"].endswith("line 3 was changed after it was written")
    code, result = run({"path": str(path), "fail_on_broken": False}, capsys)
    assert code == 0 and not result["intact"] and result["records"] == 4


def test_a_state_directory_that_does_not_exist_is_named(tmp_path, capsys):
    code, result = run({"state_dir": str(tmp_path / "nowhere"), "host": "vm1"}, capsys)
    assert code == 1 and "state directory" in result["msg"] and "does not exist" in result["msg"]
