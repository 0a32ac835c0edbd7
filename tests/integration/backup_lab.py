"""What the backup tests share: a lab VM's PostgreSQL, its pgBackRest files, the backup bucket.

HOST is the lab's packaged-Odoo VM. put_the_vm_back() makes it a legacy VM again: no archiving settings,
no pgBackRest configuration or timers, an empty repository (its package stays installed).
"""

import boto3
import psycopg
from conftest import LEGACY_VMS, STATE_DIR, ansible_adhoc, lab_secret, run_playbook, vms_of_variant

HOST = vms_of_variant("packaged")[0]
SETTINGS = ("archive_mode", "archive_command", "wal_level")
CONFIG = "/etc/pgbackrest/pgbackrest.conf"
SECRETS = "/etc/pgbackrest/conf.d/odoo-migration-secrets.conf"
BUCKET = "odoo-backups"


def playbook(name, state_dir, *extra, timeout=1200):
    return run_playbook(
        name, "--limit", HOST, "-e", f"odoo_migration_state_dir={state_dir}", *extra, timeout=timeout
    )


def failures(report):
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(HOST, {})
            if result.get("failed"):
                found.append(result.get("msg", ""))
    return found


def source(database="postgres"):
    password, _mode = lab_secret(f"{HOST}-source-postgres-password")
    return psycopg.connect(
        host="127.0.0.1",
        port=LEGACY_VMS[HOST]["lab_pg_host_port"],
        user="odoo_migration",
        password=password,
        dbname=database,
        autocommit=True,
    )


def server_settings():
    with source() as connection:
        rows = connection.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)
        ).fetchall()
    return dict(rows)


def on_vm(command, become_user=None):
    return ansible_adhoc(HOST, "ansible.builtin.command", command, become_user=become_user, become=True)[HOST]


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
    for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=f"{HOST}/"):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=BUCKET, Key=entry["Key"], VersionId=entry["VersionId"])


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


def discovered_state(tmp_path_factory, name):
    """A state directory with HOST discovered, HOST a legacy VM again."""
    state_dir = tmp_path_factory.mktemp(name)
    rc, report, _output = playbook("discover.yml", state_dir)
    assert rc == 0, report
    # A VM left configured by an interrupted run starts as a legacy VM again.
    put_the_vm_back()
    return state_dir
