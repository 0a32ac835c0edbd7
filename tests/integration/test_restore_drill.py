"""Restore drills on a lab VM, after the backup baseline: a point in time brought back exactly, the drill
role's restore point compared table by table, a drill that does not fit the disk, and the gate that holds
a VM without a passing drill back from a wave's cutover.
"""

import base64
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from backup_lab import HOST, discovered_state, failures, file_on_vm, playbook, put_the_vm_back, source
from conftest import ansible_adhoc, lab_secret

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".build" / "collections"))
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit.journal import read_journal  # noqa: E402

SCRATCH = "/var/lib/postgresql/odoo-migration-drill"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    state_dir = discovered_state(tmp_path_factory, "drill-state")
    rc, report, _output = playbook("baseline.yml", state_dir, "-e", "odoo_migration_allow_restart=true")
    assert rc == 0, failures(report)
    yield state_dir
    with source("acme") as connection:
        connection.execute("DROP TABLE IF EXISTS drill_canary, drill_victim")
    put_the_vm_back()


def archived_now():
    """Switch WAL and wait until the archiver has the segment: a restore can then replay up to here."""
    with source() as connection:
        segment = connection.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        for _attempt in range(120):
            last = connection.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or ""
            if last[8:] >= segment[8:]:
                return
            time.sleep(0.5)
    pytest.fail(f"segment {segment} was not archived")


def journaled_drills(state_dir):
    """Every drill's verdict in the host's journal, oldest first."""
    return [
        entry["details"][0]["restore_drill"]
        for entry in read_journal(str(state_dir / HOST / "journal.jsonl"))
        if entry.get("module") == "sysgenpro.odoo_migration.pg_restore_drill" and entry.get("details")
    ]


def drill(**args):
    return ansible_adhoc(
        HOST, "sysgenpro.odoo_migration.pg_restore_drill", json.dumps(args), become_user="postgres"
    )[HOST]


def test_a_drill_to_a_point_in_time_brings_back_the_canary_and_not_the_change(baseline):
    with source("acme") as connection:
        connection.execute("CREATE TABLE drill_victim AS SELECT generate_series(1, 100) AS id")
        connection.execute("CREATE TABLE drill_canary (id serial PRIMARY KEY, note text NOT NULL)")
        before_canary = connection.execute("SELECT clock_timestamp()").fetchone()[0]
        connection.execute("INSERT INTO drill_canary (note) VALUES ('committed before the recorded time')")
        recorded = connection.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(1)
        # The destructive change, after the recorded time.
        connection.execute("DROP TABLE drill_victim")
        connection.execute("INSERT INTO drill_canary (note) VALUES ('committed after the recorded time')")
    archived_now()

    result = drill(
        stanza=HOST,
        target="time",
        target_time=recorded.isoformat(),
        expected_row_counts={"acme": {"public.drill_canary": 1, "public.drill_victim": 100}},
    )
    assert result.get("passed"), result.get("msg")
    assert result["row_counts"]["acme"]["public.drill_canary"] == 1
    assert result["row_counts"]["acme"]["public.drill_victim"] == 100
    point = result["recovery_point"]
    reached = datetime.datetime.fromisoformat(point["time"].replace("Z", "+00:00"))
    assert point["source"] == "last_replayed_transaction"
    assert before_canary <= reached <= recorded, (before_canary, reached, recorded)
    assert point["timeline"] == 2
    assert result["amcheck"]["ok"] and result["databases"]["acme"]["read_error"] is None
    assert result["restore_seconds"] > 0 and result["recovery_seconds"] > 0
    assert not file_on_vm(SCRATCH)["exists"]


def test_a_drill_to_the_end_of_the_backup_is_promoted_there(baseline):
    # pgBackRest pauses at an immediate target unless told otherwise: the drill must still end.
    result = drill(stanza=HOST, target="immediate", amcheck=False, timeout=300)
    assert result.get("passed"), result.get("msg") or result.get("problems")
    assert result["target"] == "immediate" and result["recovery_point"]["timeline"] == 2
    assert not file_on_vm(SCRATCH)["exists"]


def test_the_drill_role_compares_every_table_at_its_restore_point_and_records_it(baseline):
    rc, report, _output = playbook("drill.yml", baseline)
    assert rc == 0, failures(report)
    record = yaml.safe_load((baseline / HOST / "restore_drill.yml").read_text())
    assert record["passed"] and record["problems"] == []
    assert record["target"].startswith("odoo-migration-drill-")
    assert (
        record["databases"]["acme"]["tables"] > 100 and record["databases"]["acme"]["count_differences"] == {}
    )
    assert record["amcheck_ok"] is True
    # Every attachment the restored acme references is in its filestore backup.
    assert record["attachments"]["checked"] == ["acme"] and record["attachments"]["acme"]["missing"] == []
    assert record["attachments"]["acme"]["referenced"] > 0
    # Writers waited only for the instant of the restore point.
    assert 0 <= record["writers_held_seconds"] < 2
    drills = journaled_drills(baseline)
    assert drills and drills[-1]["passed"] and drills[-1]["backup_set"] == record["backup_set"]


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def test_a_drill_on_the_container_host_proves_the_backup_and_leaves_no_secret_behind(baseline):
    rc, report, _output = playbook("drill.yml", baseline, "-e", "restore_drill_location=container_host")
    assert rc == 0, failures(report)
    record = yaml.safe_load((baseline / HOST / "restore_drill.yml").read_text())
    assert record["location"] == "container_host"
    assert record["passed"] and record["problems"] == [] and record["amcheck_ok"] is True
    assert record["databases"]["acme"]["count_differences"] == {}
    assert record["attachments"]["acme"]["missing"] == [] and record["attachments"]["acme"]["referenced"] > 0
    # The drill in the container goes to the VM's journal like any other.
    drills = journaled_drills(baseline)
    assert drills[-1]["passed"] and drills[-1]["recovery_point"] == record["recovery_point"]
    # Nothing of the drill stays on the VM or the container host: no scratch directory, no container.
    assert not file_on_vm(SCRATCH)["exists"]
    assert docker("ps", "-aq", "--filter", "label=org.sysgenpro.odoo-migration.role=restore-drill") == ""
    # The image the drill ran in holds none of the repository's secrets in any of its layers.
    image = docker("images", "-q", "odoo-migration/restore-drill").split()[0]
    secrets = file_on_vm("/etc/pgbackrest/conf.d/odoo-migration-secrets.conf")
    assert secrets["exists"] and secrets["mode"] == "0640"
    saved = subprocess.run(["docker", "save", image], capture_output=True, check=True).stdout
    for name in ("s3-backup-secret-key",):
        assert lab_secret(name)[0].encode() not in saved
    passphrase = ansible_adhoc(
        HOST, "ansible.builtin.slurp", "src=/etc/pgbackrest/conf.d/odoo-migration-secrets.conf", become=True
    )[HOST]["content"]
    cipher = [
        line.split("=", 1)[1]
        for line in base64.b64decode(passphrase).decode().splitlines()
        if line.startswith("repo1-cipher-pass=")
    ]
    assert cipher and cipher[0].encode() not in saved


def test_a_drill_that_does_not_fit_restores_nothing_and_the_wave_holds_the_vm_back(baseline):
    too_much = "restore_drill_scratch_reserve_mb=100000000"
    rc, report, _output = playbook("drill.yml", baseline, "-e", too_much)
    assert rc != 0
    (message,) = failures(report)
    assert "does not fit on the disk" in message and "Nothing was restored" in message
    assert not file_on_vm(SCRATCH)["exists"]
    assert yaml.safe_load((baseline / HOST / "restore_drill.yml").read_text())["passed"] is False

    # In a wave, a VM whose drill fails goes no further: no image, no replication, no cutover.
    rc, report, _output = playbook("wave.yml", baseline, "-e", too_much, "-e", f"wave={HOST}", timeout=900)
    assert rc != 0
    app = yaml.safe_load((baseline / HOST / "app_cutover.yml").read_text())
    assert app["outcome"] == "held_back"
    assert "does not fit on the disk" in app["failure"]
    assert f"ansible-playbook sysgenpro.odoo_migration.drill -e wave={HOST}" in app["failure"]
    assert not (baseline / HOST / "image.yml").exists()
    text = (baseline / "reports" / f"wave-{HOST}.md").read_text()
    assert "Held back from the cutover: " in text and "held back (restore drill): 1" in text


def test_an_attachment_missing_from_the_filestore_backup_fails_the_drill(baseline):
    dangling = "fe/" + "fe" * 20
    with source("acme") as connection:
        connection.execute(
            "INSERT INTO ir_attachment (name, type, store_fname, res_model, mimetype)"
            " VALUES ('lost scan', 'binary', %s, 'res.partner', 'application/pdf')",
            (dangling,),
        )
    try:
        archived_now()
        result = drill(
            stanza=HOST,
            amcheck=False,
            fail_on_problem=False,
            filestore_objects={"acme": "/var/lib/odoo-migration/filestore-backup/acme.objects"},
        )
    finally:
        with source("acme") as connection:
            connection.execute("DELETE FROM ir_attachment WHERE store_fname = %s", (dangling,))
    assert result["passed"] is False
    assert result["attachments"]["acme"]["missing"] == [dangling]
    assert any(
        "1 attachments are not in the filestore backup (first: " + dangling in p for p in result["problems"]
    )
