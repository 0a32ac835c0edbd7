"""pg_logical_migration and pg_replication_info on an isolated PostgreSQL 17 -> 18 pair.

The modules run through ansible-playbook (a playbook file written under pytest's tmp dir,
mode 0600: passwords never appear on a command line). The tests run in file order:
(a) copy + follow under a writer, (d) network cut, (c) WAL budget abort, (b) SIGKILL and
resume.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".build" / "collections"))
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import copy_snapshot
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    replication as _replication,
)
from module_run import ansible_command, ansible_env, playbook_file, run_module
from pg_pair import SIDES, pg_pair_fixture

REPO = Path(__file__).resolve().parents[2]
pg_pair = pg_pair_fixture(scope="module")
TGT = SIDES["tgt"]["container"]
SRC = SIDES["src"]["container"]
# The target's subscription replicates as this login on the source, never as the source's superuser.
FORWARD_LOGIN = {"name": "odoo_migration_forward_pair", "password": "forward-Path-secret-27"}


def _args(pair, **extra):
    args = {
        "source": pair.module_endpoint("src"),
        "target": pair.module_endpoint("tgt", "postgres"),
        "source_conninfo_from_target": {"host": SRC, "port": 5432},
        "replication_login": FORWARD_LOGIN,
        "replica_identity_policy": "full",
        **pair.engine_client_args(),
    }
    args.update(extra)
    return args


def _info_args(pair, **extra):
    args = {"source": pair.module_endpoint("src"), "target": pair.module_endpoint("tgt")}
    args.update(extra)
    return args


def _heartbeat_args(pair, **extra):
    return _info_args(pair, heartbeat_timeout=5, **extra)


def wait_caught_up(tmp_path, pair, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        info = run_module(tmp_path, "pg_replication_heartbeat", _heartbeat_args(pair))
        if info.get("lag_bytes") == 0 and info.get("heartbeat_arrived"):
            return info
        if time.monotonic() > deadline:
            pytest.fail(f"replication did not catch up: {json.dumps(info)[:2000]}")
        time.sleep(1)


def table_counts(pair, side):
    sql = (
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables "
        "WHERE schemaname IN ('public', 'odoo_migration') AND relname NOT LIKE 'copy_%' ORDER BY 1"
    )
    tables = [row[0] for row in pair.query(side, sql)]
    union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
    return dict((row[0], int(row[1])) for row in pair.query(side, union))


class Writer(threading.Thread):
    """Inserts, updates and deletes lab_document rows; logs every acknowledged commit."""

    def __init__(self, endpoint):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.rows = {}  # id -> amount, or None when deleted
        self.commits = 0
        self.error = None

    def run(self):
        try:
            with psycopg.connect(autocommit=True, **self.endpoint) as conn:
                n = 0
                while not self.stop.is_set():
                    n += 1
                    row = conn.execute(
                        "INSERT INTO lab_document (name, state, amount, create_date) "
                        "VALUES (%s, 'draft', %s, now()) RETURNING id",
                        (f"writer {n}", n),
                    ).fetchone()
                    self.rows[row[0]] = float(n)
                    self.commits += 1
                    live = [i for i, v in self.rows.items() if v is not None]
                    if n % 3 == 0 and live:
                        target = live[n % len(live)]
                        conn.execute("UPDATE lab_document SET amount = %s WHERE id = %s", (n * 10.0, target))
                        self.rows[target] = n * 10.0
                        self.commits += 1
                    if n % 5 == 0 and live:
                        target = live[(n * 7) % len(live)]
                        conn.execute("DELETE FROM lab_document WHERE id = %s", (target,))
                        self.rows[target] = None
                        self.commits += 1
                    conn.execute(
                        "INSERT INTO lab_audit_log (source, message) VALUES ('writer', %s)",
                        (f"commit {n}",),
                    )
                    self.commits += 1
                    time.sleep(0.002)
        except Exception as error:  # reported by the test
            self.error = error


def test_a_copy_and_follow_under_writer(pg_pair, tmp_path):
    check = run_module(tmp_path, "pg_logical_migration", _args(pg_pair, chunk_rows=5000), check=True)
    assert check["changed"] and check["would"]
    assert "login odoo_migration_forward_pair would be created" in check["would"]
    assert pg_pair.scalar("src", "SELECT count(*) FROM pg_publication") == "0"
    assert (
        pg_pair.scalar("src", "SELECT count(*) FROM pg_roles WHERE rolname = 'odoo_migration_forward_pair'")
        == "0"
    )

    writer = Writer(pg_pair.endpoint("src"))
    writer.start()
    time.sleep(0.5)
    started = time.monotonic()
    result = run_module(tmp_path, "pg_logical_migration", _args(pg_pair, chunk_rows=5000))
    elapsed = time.monotonic() - started
    time.sleep(1)
    writer.stop.set()
    writer.join(10)
    assert writer.error is None, writer.error
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and result["copy"]["chunks_copied"] == result["copy"]["chunks"]
    print(
        "copy: {} rows in {}s ({} rows/s); module {:.1f}s; writer commits {}".format(
            result["copy"]["rows"],
            result["copy"]["seconds"],
            result["copy"]["rows_per_second"],
            elapsed,
            writer.commits,
        )
    )
    print(json.dumps([(s["step"], s["seconds"]) for s in result["steps"]]))
    info = wait_caught_up(tmp_path, pg_pair)
    assert info["healthy"], info["problems"]
    # The subscription logs in as the forward login: replication only, and no source superuser password.
    assert result["replication_login"] == FORWARD_LOGIN["name"]
    conninfo = pg_pair.scalar(
        "tgt", "SELECT subconninfo FROM pg_subscription WHERE subname = 'odoo_migration'"
    )
    assert "user=odoo_migration_forward_pair" in conninfo.replace("'", "")
    assert pg_pair.passwords["src"] not in conninfo and FORWARD_LOGIN["password"] not in json.dumps(result)
    assert pg_pair.query(
        "src", "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = 'odoo_migration_forward_pair'"
    ) == [["f", "t"]]

    target_rows = dict(
        (int(r[0]), float(r[1]))
        for r in pg_pair.query("tgt", "SELECT id, amount FROM lab_document WHERE name LIKE 'writer %'")
    )
    for row_id, amount in writer.rows.items():
        if amount is None:
            assert row_id not in target_rows
        else:
            assert target_rows.get(row_id) == amount, row_id
    assert table_counts(pg_pair, "src") == table_counts(pg_pair, "tgt")
    # Roles come without superuser or login; the database has the source's locale.
    assert pg_pair.query(
        "tgt", "SELECT rolsuper, rolcanlogin, rolreplication FROM pg_roles WHERE rolname = 'odoo'"
    ) == [["f", "f", "f"]]
    assert pg_pair.query("tgt", "SELECT datcollate, datctype FROM pg_database WHERE datname = 'shop'") == [
        ["C", "C.UTF-8"]
    ]
    again = run_module(tmp_path, "pg_logical_migration", _args(pg_pair, chunk_rows=5000))
    assert again["changed"] is False, again["steps"]


def test_a2_target_restart_during_catch_up_loses_nothing(pg_pair, tmp_path):
    writer = Writer(pg_pair.endpoint("src"))
    writer.start()
    time.sleep(1)
    pg_pair.restart("tgt")
    time.sleep(1)
    writer.stop.set()
    writer.join(10)
    assert writer.error is None, writer.error
    info = wait_caught_up(tmp_path, pg_pair, timeout=90)
    assert info["healthy"], info["problems"]
    target_rows = dict(
        (int(r[0]), float(r[1]))
        for r in pg_pair.query("tgt", "SELECT id, amount FROM lab_document WHERE name LIKE 'writer %'")
    )
    for row_id, amount in writer.rows.items():
        if amount is None:
            assert row_id not in target_rows
        else:
            assert target_rows.get(row_id) == amount, row_id
    assert table_counts(pg_pair, "src") == table_counts(pg_pair, "tgt")


def test_a3_the_info_module_only_reads(pg_pair, tmp_path):
    """pg_replication_info writes nothing (no heartbeat), says so, and still reports the apply lag."""
    wait_caught_up(tmp_path, pg_pair)
    beat = "SELECT beat FROM odoo_migration.heartbeat WHERE id = 1"
    before = pg_pair.scalar("src", beat)
    info = run_module(tmp_path, "pg_replication_info", _info_args(pg_pair))
    assert info["changed"] is False and info["healthy"], info["problems"]
    assert "heartbeat_arrived" not in info and "replay_lag_seconds" in info["slot"]
    assert pg_pair.scalar("src", beat) == before
    beat_run = run_module(tmp_path, "pg_replication_heartbeat", _heartbeat_args(pg_pair))
    assert beat_run["changed"] is True and beat_run["heartbeat_arrived"]
    assert pg_pair.scalar("src", beat) != before


def test_d_network_cut_is_reported(pg_pair, tmp_path):
    pg_pair.disconnect("tgt")
    try:
        pg_pair.psql(
            "src", "INSERT INTO lab_document (name, state, amount) VALUES ('during cut', 'draft', 1)"
        )
        info = run_module(tmp_path, "pg_replication_info", _info_args(pg_pair))
        assert info["healthy"] is False
        assert info["target"]["reachable"] is False
        assert any("target unreachable" in p for p in info["problems"]), info["problems"]
        assert info["source"]["reachable"] is True
    finally:
        pg_pair.reconnect("tgt")
    info = wait_caught_up(tmp_path, pg_pair, timeout=90)
    assert pg_pair.scalar("tgt", "SELECT count(*) FROM lab_document WHERE name = 'during cut'") == "1"
    assert info["healthy"], info["problems"]


def test_c_wal_budget_abort(pg_pair, tmp_path):
    pg_pair.psql("tgt", "ALTER SUBSCRIPTION odoo_migration DISABLE")
    pg_pair.psql(
        "src",
        "INSERT INTO lab_audit_log (source, message) "
        "SELECT 'bulk', repeat(md5(g::text), 30) FROM generate_series(1, 20000) g",
    )
    budget = 4 * 1024 * 1024
    info = run_module(tmp_path, "pg_replication_info", _info_args(pg_pair, wal_budget_bytes=budget))
    assert info["over_budget"] and "aborted" not in info and info["changed"] is False
    # Check mode says what the abort would do, and does nothing.
    would = run_module(
        tmp_path,
        "pg_replication_heartbeat",
        _heartbeat_args(pg_pair, wal_budget_bytes=budget, abort_on_budget=True),
        check=True,
    )
    assert would["aborted"] and would["changed"] is True
    assert pg_pair.scalar("src", "SELECT count(*) FROM pg_replication_slots") == "1"
    info = run_module(
        tmp_path,
        "pg_replication_heartbeat",
        _heartbeat_args(pg_pair, wal_budget_bytes=budget, abort_on_budget=True),
    )
    assert info["aborted"] and info["changed"] is True
    assert pg_pair.scalar("src", "SELECT count(*) FROM pg_replication_slots") == "0"
    assert pg_pair.scalar("tgt", "SELECT count(*) FROM pg_subscription") == "0"
    pg_pair.psql("src", "INSERT INTO lab_document (name, state, amount) VALUES ('after abort', 'draft', 1)")
    assert pg_pair.scalar("src", "SELECT count(*) FROM lab_document WHERE name = 'after abort'") == "1"


def _children(pid):
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry.name))
    return kids


def kill_tree(pid):
    """SIGKILL ansible-playbook and every descendant (the module), but not the snapshot
    holder: it is the process that must survive a crash of the copy."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    for member in tree:
        try:
            cmdline = Path(f"/proc/{member}/cmdline").read_bytes()
        except OSError:
            continue
        if b"holder_process" in cmdline:
            continue
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_b_sigkill_halfway_then_resume(pg_pair, tmp_path):
    undo = run_module(
        tmp_path, "pg_logical_migration", _args(pg_pair, state="absent", drop_target_database=True)
    )
    assert undo["changed"]
    assert "drop login odoo_migration_forward_pair" in undo["actions"]
    assert (
        pg_pair.scalar("src", "SELECT count(*) FROM pg_roles WHERE rolname = 'odoo_migration_forward_pair'")
        == "0"
    )
    assert (
        pg_pair.scalar("tgt", "SELECT count(*) FROM pg_database WHERE datname = 'shop'", dbname="postgres")
        == "0"
    )
    pg_pair.psql(
        "src",
        "CREATE TABLE IF NOT EXISTS big_move (id bigserial PRIMARY KEY, payload text);"
        "INSERT INTO big_move (payload) SELECT repeat(md5(g::text), 4) FROM generate_series(1, 300000) g",
    )
    args = _args(pg_pair, chunk_rows=2000, jobs=2)
    path = playbook_file(tmp_path, "pg_logical_migration", args)
    proc = subprocess.Popen(
        ansible_command(path), cwd=REPO, env=ansible_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            run = pg_pair.psql(
                "tgt",
                "SELECT count(*) FILTER (WHERE done), count(*) FROM odoo_migration.copy_progress",
                check=False,
            )
            if run.returncode == 0 and run.stdout.strip():
                done, total = (int(x) for x in run.stdout.strip().split("|"))
                if total and 20 <= done < total - 20:
                    kill_tree(proc.pid)
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the copy never reached the kill point")
    finally:
        proc.wait(30)
    time.sleep(0.5)
    done_rows = pg_pair.query(
        "tgt", "SELECT table_name, chunk, done_at FROM odoo_migration.copy_progress WHERE done ORDER BY 1, 2"
    )
    total = int(pg_pair.scalar("tgt", "SELECT count(*) FROM odoo_migration.copy_progress"))
    assert 0 < len(done_rows) < total
    print(f"killed with {len(done_rows)} of {total} chunks done")

    result = run_module(tmp_path, "pg_logical_migration", args)
    assert not result.get("failed"), result.get("msg")
    assert result["copy_action"] == "resume"
    assert result["copy"]["chunks_skipped"] >= len(done_rows)
    assert result["copy"]["chunks_copied"] == total - result["copy"]["chunks_skipped"]
    after = dict(
        ((r[0], r[1]), r[2])
        for r in pg_pair.query("tgt", "SELECT table_name, chunk, done_at FROM odoo_migration.copy_progress")
    )
    for table, chunk, done_at in done_rows:
        assert after[(table, chunk)] == done_at, f"chunk {table}/{chunk} was copied again"
    wait_caught_up(tmp_path, pg_pair)
    assert table_counts(pg_pair, "src") == table_counts(pg_pair, "tgt")
    assert (
        pg_pair.scalar("src", "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '%holder'")
        == "0"
    )


def test_c_an_abandoned_copy_does_not_keep_its_snapshot_for_days(pg_pair):
    """The holder of a copy's snapshot ends once no run of the copy is connected for its idle bound,
    so a copy given up on does not hold back the source's vacuum; one that is connected keeps it."""
    endpoint = pg_pair.pg_endpoint("src")
    holders = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'odoo_migration_replication_snapshot_holder'"
    )
    run = _pg.connect(endpoint, _replication.APPLICATION_NAME)  # a copy's run, connected
    try:
        info = copy_snapshot.start_snapshot_holder(endpoint, "holder_idle_probe", idle_seconds=3)
        time.sleep(10)
        assert pg_pair.scalar("src", holders) == "1", "the holder ended while its copy was connected"
    finally:
        run.close()
    deadline = time.monotonic() + 30
    while pg_pair.scalar("src", holders) != "0":
        assert time.monotonic() < deadline, "the holder outlived its copy's idle bound"
        time.sleep(1)
    assert info["snapshot"]
    pg_pair.psql("src", "SELECT pg_drop_replication_slot('holder_idle_probe')")
