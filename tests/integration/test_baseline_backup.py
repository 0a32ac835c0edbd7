"""baseline_backup on a lab VM: pgBackRest to the lab's MinIO over TLS, archiving, the first backup, timers.

Bad input leaves the VM as it was; a good run archives, backs up, encrypts and schedules; a second run
changes nothing. The VM's PostgreSQL settings and pgBackRest's configuration are put back afterwards.
"""

import json
import time

import boto3
import psycopg
import pytest
import yaml
from conftest import LEGACY_VMS, STATE_DIR, ansible_adhoc, lab_secret, run_playbook, vms_of_variant

HOST = vms_of_variant("packaged")[0]
SETTINGS = ("archive_mode", "archive_command", "wal_level")
CONFIG = "/etc/pgbackrest/pgbackrest.conf"
SECRETS = "/etc/pgbackrest/conf.d/odoo-migration-secrets.conf"


def playbook(state_dir, *extra):
    return run_playbook(
        "baseline.yml", "--limit", HOST, "-e", f"odoo_migration_state_dir={state_dir}", *extra, timeout=1200
    )


def failures(report):
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(HOST, {})
            if result.get("failed"):
                found.append(result.get("msg", ""))
    return found


def source():
    password, _mode = lab_secret(f"{HOST}-source-postgres-password")
    return psycopg.connect(
        host="127.0.0.1",
        port=LEGACY_VMS[HOST]["lab_pg_host_port"],
        user="odoo_migration",
        password=password,
        dbname="postgres",
        autocommit=True,
    )


def server_settings():
    with source() as connection:
        rows = connection.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)
        ).fetchall()
    return dict(rows)


def on_vm(command, become_user=None):
    result = ansible_adhoc(HOST, "ansible.builtin.command", command, become_user=become_user, become=True)[
        HOST
    ]
    return result


def file_on_vm(path):
    return ansible_adhoc(HOST, "ansible.builtin.stat", f"path={path}", become=True)[HOST]["stat"]


def store():
    return boto3.client(
        "s3",
        endpoint_url="https://127.0.0.1:9000",
        region_name="us-east-1",
        aws_access_key_id=lab_secret("minio-root-user")[0],
        aws_secret_access_key=lab_secret("minio-root-password")[0],
        verify=str(STATE_DIR / "tls" / "lab-ca.crt"),
    )


def empty_repository():
    client = store()
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket="odoo-backups", Prefix=f"{HOST}/"):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket="odoo-backups", Key=entry["Key"], VersionId=entry["VersionId"])


def put_the_vm_back():
    with source() as connection:
        for name in SETTINGS:
            connection.execute(f"ALTER SYSTEM RESET {name}")
    ansible_adhoc(
        HOST, "ansible.builtin.systemd_service", "name=postgresql@17-main state=restarted", become=True
    )
    for path in (CONFIG, SECRETS):
        ansible_adhoc(HOST, "ansible.builtin.file", f"path={path} state=absent", become=True)
    for timer in ("full", "diff"):
        ansible_adhoc(
            HOST,
            "ansible.builtin.systemd_service",
            f"name=pgbackrest-backup-{timer}.timer state=stopped enabled=false",
            become=True,
        )
    empty_repository()


@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("baseline-state")
    rc, report, _output = run_playbook(
        "discover.yml", "--limit", HOST, "-e", f"odoo_migration_state_dir={state_dir}"
    )
    assert rc == 0, report
    # A VM left configured by an interrupted run starts as a legacy VM again.
    put_the_vm_back()
    yield state_dir
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


def test_with_consent_the_vm_archives_and_is_backed_up_encrypted(discovered):
    rc, report, output = playbook(discovered, "-e", "baseline_backup_allow_restart=true")
    assert rc == 0, failures(report)
    settings = server_settings()
    assert settings["archive_mode"] == "on"
    assert settings["wal_level"] == "logical"
    assert settings["archive_command"] == f"pgbackrest --stanza={HOST} archive-push %p"
    with source() as connection:
        archived, failed = connection.execute(
            "SELECT archived_count, failed_count FROM pg_stat_archiver"
        ).fetchone()
    assert archived > 0 and failed == 0

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
    keys = [
        item["Key"] for item in store().list_objects_v2(Bucket="odoo-backups", Prefix=f"{HOST}/")["Contents"]
    ]
    manifest = next(key for key in keys if key.endswith("backup.manifest"))
    body = store().get_object(Bucket="odoo-backups", Key=manifest)["Body"].read()
    assert b"[backup]" not in body and b"backup-label" not in body

    for timer in ("full", "diff"):
        assert on_vm(f"systemctl is-enabled pgbackrest-backup-{timer}.timer")["stdout"] == "enabled"

    record = yaml.safe_load((discovered / HOST / "baseline_backup.yml").read_text())
    assert all(record["checks"].values()), record["checks"]
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
