import datetime
import json
import os
import subprocess
import sys

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit import journal

MOMENT = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)


def test_records_chain_to_the_one_before(tmp_path):
    (tmp_path / "legacy-vm-1").mkdir()
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


def test_an_edited_line_is_named_by_the_verifier_and_an_edited_last_line_blocks_appending(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal.append_event(str(path), {"action": "cutover", "downtime_s": 2.1}, now=MOMENT)
    journal.append_event(str(path), {"action": "smoke_test", "result": "ok"}, now=MOMENT)
    lines = path.read_text().splitlines()
    edited = json.loads(lines[0])
    edited["downtime_s"] = 0.5
    path.write_text(json.dumps(edited) + "\n" + lines[1] + "\n")
    assert journal.verify_journal(str(path)) == ["line 1 was changed after it was written"]
    last = json.loads(lines[1])
    last["result"] = "failed"
    path.write_text(lines[0] + "\n" + json.dumps(last) + "\n")
    assert journal.first_problem(str(path)) == (2, "was changed after it was written")
    with pytest.raises(journal.JournalError, match="broken journal"):
        journal.append_event(str(path), {"action": "finalize"}, now=MOMENT)


def test_a_removed_line_is_detected(tmp_path):
    path = tmp_path / "journal.jsonl"
    for action in ("discover", "baseline", "containerize"):
        journal.append_event(str(path), {"action": action}, now=MOMENT)
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[2] + "\n")
    assert journal.verify_journal(str(path)) == [
        "line 2 has seq 2 where 1 was due (a record before it was removed?)"
    ]


def test_an_append_reads_only_the_end_of_the_journal(tmp_path, monkeypatch):
    path = tmp_path / "journal.jsonl"
    with monkeypatch.context() as quick:
        quick.setattr(journal.os, "fsync", lambda descriptor: None)
        for number in range(600):
            journal.append_event(str(path), {"action": "task", "n": number, "pad": "x" * 500}, now=MOMENT)
    assert path.stat().st_size > 4 * journal.TAIL_BYTES
    read = []
    real_open = journal.os.fdopen

    def counting_fdopen(*args, **kwargs):
        handle = real_open(*args, **kwargs)
        original = handle.read

        def read_and_count(size=-1):
            data = original(size)
            read.append(len(data))
            return data

        handle.read = read_and_count
        return handle

    monkeypatch.setattr(journal.os, "fdopen", counting_fdopen)
    record = journal.append_event(str(path), {"action": "task", "n": 600}, now=MOMENT)
    assert record["seq"] == 600 and sum(read) <= journal.TAIL_BYTES
    assert journal.verify_journal(str(path)) == []


def test_a_line_cut_short_by_a_killed_writer_is_not_left_in_the_chain(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal.append_event(str(path), {"action": "discover"}, now=MOMENT)
    with open(path, "a") as handle:
        handle.write('{"action": "replicate", "seq": 1, "prev')
    record = journal.append_event(str(path), {"action": "replicate"}, now=MOMENT)
    assert record["seq"] == 1
    assert [r["action"] for r in journal.read_journal(str(path))] == ["discover", "replicate"]
    assert journal.verify_journal(str(path)) == []


def test_two_writers_at_once_keep_one_chain(tmp_path):
    path = str(tmp_path / "journal.jsonl")
    script = (
        "import sys\n"
        "from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit import journal\n"
        "for n in range(100):\n"
        "    journal.append_event(sys.argv[1], {'action': 'task', 'writer': sys.argv[2], 'n': n})\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    writers = [subprocess.Popen([sys.executable, "-c", script, path, name], env=env) for name in ("a", "b")]
    assert [writer.wait(60) for writer in writers] == [0, 0]
    records = journal.read_journal(path)
    assert len(records) == 200 and journal.verify_journal(path) == []


def test_free_text_secrets_are_masked(tmp_path):
    text = (
        "psql: connection to postgresql://migrator:s3cr%40t@10.0.0.5/acme failed; "
        'PGPASSWORD=hunter2 password: \'pa ss\' {"api_token": "t0k"} user=odoo'
    )
    masked = journal.redact_text(text)
    for secret in ("s3cr%40t", "hunter2", "pa ss", "t0k"):
        assert secret not in masked
    assert "user=odoo" in masked and "postgresql://migrator:********@10.0.0.5/acme" in masked


def test_an_event_without_action_is_refused(tmp_path):
    with pytest.raises(journal.JournalError, match="action"):
        journal.append_event(str(tmp_path / "journal.jsonl"), {"result": "ok"})
    assert not (tmp_path / "journal.jsonl").exists()


def test_a_line_that_is_not_json_is_reported_with_its_number(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"action": "x"}\nnot json\n')
    with pytest.raises(journal.JournalError, match="line 2 is not JSON"):
        journal.read_journal(str(path))
