import datetime
import json

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils import _journal as journal

MOMENT = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)


def test_records_chain_to_the_one_before(tmp_path):
    path = str(tmp_path / "legacy-vm-1" / "journal.jsonl")
    first = journal.append_event(path, {"action": "discover", "result": "ok"}, now=MOMENT)
    second = journal.append_event(path, {"action": "replicate", "result": "ok"}, now=MOMENT)
    assert first["seq"] == 0 and first["prev_hash"] == journal.GENESIS_HASH
    assert second["seq"] == 1 and second["prev_hash"] == first["hash"]
    assert [record["action"] for record in journal.read_journal(path)] == ["discover", "replicate"]
    assert journal.verify_journal(path) == []


def test_secrets_are_masked_before_they_reach_the_file(tmp_path):
    path = str(tmp_path / "journal.jsonl")
    journal.append_event(
        path,
        {"action": "connect", "db_password": "hunter2", "params": [{"api_token": "t0k"}], "user": "odoo"},
        now=MOMENT,
    )
    text = (tmp_path / "journal.jsonl").read_text()
    assert "hunter2" not in text and "t0k" not in text
    record = journal.read_journal(path)[0]
    assert record["db_password"] == journal.REDACTED
    assert record["params"] == [{"api_token": journal.REDACTED}]
    assert record["user"] == "odoo"


def test_an_edited_line_is_detected_and_blocks_appending(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal.append_event(str(path), {"action": "cutover", "downtime_s": 2.1}, now=MOMENT)
    journal.append_event(str(path), {"action": "smoke_test", "result": "ok"}, now=MOMENT)
    lines = path.read_text().splitlines()
    edited = json.loads(lines[0])
    edited["downtime_s"] = 0.5
    path.write_text(json.dumps(edited) + "\n" + lines[1] + "\n")
    assert journal.verify_journal(str(path)) == ["record 0 was changed after it was written"]
    with pytest.raises(journal.JournalError, match="broken journal"):
        journal.append_event(str(path), {"action": "finalize"}, now=MOMENT)


def test_a_removed_line_is_detected(tmp_path):
    path = tmp_path / "journal.jsonl"
    for action in ("discover", "baseline", "containerize"):
        journal.append_event(str(path), {"action": action}, now=MOMENT)
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[2] + "\n")
    problems = journal.verify_journal(str(path))
    assert "record 1 has seq 2" in problems


def test_an_event_without_action_is_refused(tmp_path):
    with pytest.raises(journal.JournalError, match="action"):
        journal.append_event(str(tmp_path / "journal.jsonl"), {"result": "ok"})
    assert not (tmp_path / "journal.jsonl").exists()


def test_a_line_that_is_not_json_is_reported_with_its_number(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"action": "x"}\nnot json\n')
    with pytest.raises(journal.JournalError, match="line 2 is not JSON"):
        journal.read_journal(str(path))
