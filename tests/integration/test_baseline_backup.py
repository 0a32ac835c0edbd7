"""baseline_backup on a lab VM: pgBackRest to the lab's MinIO over TLS, archiving, the first backup, timers.

Bad input leaves the VM as it was; a good run archives, backs up, encrypts and schedules; a second run
changes nothing. The VM's PostgreSQL settings and pgBackRest's configuration are put back afterwards.
"""

import json
import time

import pytest
import yaml
from backup_lab import (
    BUCKET,
    CONFIG,
    HOST,
    SECRETS,
    discovered_state,
    failures,
    file_on_vm,
    on_vm,
    put_the_vm_back,
    server_settings,
    source,
    store,
)
from backup_lab import playbook as run_phase
from conftest import STATE_DIR, lab_secret


def playbook(state_dir, *extra):
    return run_phase("baseline.yml", state_dir, *extra)


@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    yield discovered_state(tmp_path_factory, "baseline-state")
    put_the_vm_back()


def assert_vm_unchanged(before):
    assert server_settings() == before
    assert not file_on_vm(CONFIG)["exists"]
    assert not file_on_vm(SECRETS)["exists"]


def test_check_mode_predicts_and_changes_nothing(discovered):
    before = server_settings()
    assert before["archive_mode"] == "off"
    rc, report, _output = playbook(discovered, "--check", "-e", "baseline_backup_allow_restart=true")
    assert rc == 0, failures(report)
    assert report["stats"][HOST]["changed"] > 0
    assert_vm_unchanged(before)


@pytest.mark.parametrize(
    "extra, problem",
    [
        ({"odoo_migration_backup_s3_endpoint": "odoo-mig-nowhere"}, "does not answer"),
        ({"odoo_migration_backup_s3_secret_key": "not-the-secret"}, "refused the credentials"),
        ({"odoo_migration_backup_s3_bucket": "odoo-backups-missing"}, "bucket does not exist"),
    ],
    ids=["store-unreachable", "wrong-credentials", "missing-bucket"],
)
def test_bad_input_fails_clearly_and_leaves_the_vm_as_it_was(discovered, extra, problem):
    before = server_settings()
    rc, report, output = playbook(
        discovered, "-e", json.dumps({**extra, "baseline_backup_allow_restart": True})
    )
    assert rc != 0
    messages = failures(report)
    assert any(problem in message for message in messages), messages
    assert_vm_unchanged(before)
    if "odoo_migration_backup_s3_secret_key" in extra:
        assert "not-the-secret" not in output


def test_without_consent_the_restart_is_refused(discovered):
    rc, report, _output = playbook(discovered)
    assert rc != 0
    assert any("baseline_backup_allow_restart=true" in message for message in failures(report))
    assert server_settings()["archive_mode"] == "off"


def archiver_counts():
    with source() as connection:
        return connection.execute("SELECT archived_count, failed_count FROM pg_stat_archiver").fetchone()


def test_with_consent_the_vm_archives_and_is_backed_up_encrypted(discovered):
    # The counters outlive restarts: failures of an earlier lab run are not this baseline's.
    archived_before, failed_before = archiver_counts()
    rc, report, output = playbook(discovered, "-e", "baseline_backup_allow_restart=true")
    assert rc == 0, failures(report)
    settings = server_settings()
    assert settings["archive_mode"] == "on"
    assert settings["wal_level"] == "logical"
    assert settings["archive_command"] == f"pgbackrest --stanza={HOST} archive-push %p"
    archived, failed = archiver_counts()
    assert archived > archived_before and failed == failed_before

    info = json.loads(
        on_vm(f"pgbackrest --stanza={HOST} --output=json info", become_user="postgres")["stdout"]
    )
    (stanza,) = info
    assert stanza["status"]["code"] == 0
    assert stanza["cipher"] == "aes-256-cbc"
    assert [backup["type"] for backup in stanza["backup"]] == ["full"]

    # The repository's secrets are readable by root and the postgres group only, and never printed.
    secrets = file_on_vm(SECRETS)
    assert (secrets["mode"], secrets["pw_name"], secrets["gr_name"]) == ("0640", "root", "postgres")
    cipher_pass = (STATE_DIR / "secrets" / "migration" / HOST / "pgbackrest-cipher-pass").read_text().strip()
    for value in (cipher_pass, lab_secret("s3-backup-secret-key")[0]):
        assert value not in output

    # What the store holds is encrypted: the manifest does not read as pgBackRest's plain INI.
    keys = [item["Key"] for item in store().list_objects_v2(Bucket=BUCKET, Prefix=f"{HOST}/")["Contents"]]
    manifest = next(key for key in keys if key.endswith("backup.manifest"))
    body = store().get_object(Bucket=BUCKET, Key=manifest)["Body"].read()
    assert b"[backup]" not in body and b"backup-label" not in body

    for timer in ("full", "diff"):
        assert on_vm(f"systemctl is-enabled pgbackrest-backup-{timer}.timer")["stdout"] == "enabled"

    # The filestore: every content file once, under its SHA-1, and a manifest that names exactly them.
    filestore = "/var/lib/odoo/.local/share/Odoo/filestore/acme"
    files = set(
        on_vm(
            f"find {filestore} -type f -regextype posix-extended -regex '.*/[0-9a-f]{{2}}/[0-9a-f]{{40}}' "
            f"-printf '%P\\n'"
        )["stdout"].split()
    )
    assert files
    listed = store().list_objects_v2(Bucket=BUCKET, Prefix=f"{HOST}/filestore/")
    keys = [item["Key"] for item in listed["Contents"]]
    objects = {key.split("/objects/", 1)[1] for key in keys if "/objects/" in key}
    assert objects == files
    (manifest_key,) = [key for key in keys if key.startswith(f"{HOST}/filestore/manifests/acme/")]
    manifest = json.loads(store().get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert set(manifest["objects"]) == files
    assert set(on_vm("cat /var/lib/odoo-migration/filestore-backup/acme.objects")["stdout"].split()) == files

    record = yaml.safe_load((discovered / HOST / "baseline_backup.yml").read_text())
    assert all(record["checks"].values()), record["checks"]
    assert record["filestore_manifests"] == {"acme": manifest_key}
    assert record["wal_level"] == "logical"
    restart = yaml.safe_load((discovered / HOST / "baseline_restart.yml").read_text())
    assert restart["odoo_answers"] and set(restart["reasons"]) == {"archive_mode", "wal_level"}


def test_second_run_changes_nothing(discovered):
    rc, report, _output = playbook(discovered, "-e", "baseline_backup_allow_restart=true")
    assert rc == 0, failures(report)
    assert report["stats"][HOST]["changed"] == 0


def test_a_stale_backup_fails_its_own_check(discovered):
    """The age check reads the backup's stop time: a policy shorter than the backup's age fails it alone."""
    time.sleep(2)
    rc, report, _output = playbook(
        discovered,
        "-e",
        "baseline_backup_allow_restart=true",
        "-e",
        "baseline_backup_max_backup_age_hours=0.0001",
    )
    assert rc != 0
    (message,) = failures(report)
    assert "newest backup" in message and "policy: at most 0.0001 h" in message
    assert "newest full backup" not in message and "verify" not in message
