"""pg_replicate's source preparation: wal_level=logical only with consent, Odoo stopped around the restart."""

import urllib.request

import psycopg
import pytest
from conftest import LEGACY_VMS, ansible_adhoc, lab_secret, run_playbook, vms_of_variant

HOST = vms_of_variant("packaged")[0]
SETTINGS = ("wal_level", "max_replication_slots", "max_wal_senders")


def playbook(name, state_dir, *extra):
    rc, report, _output = run_playbook(
        name,
        "--limit",
        HOST,
        "-e",
        f"odoo_migration_state_dir={state_dir}",
        "-e",
        "pg_replicate_copy_databases=false",
        *extra,
    )
    return rc, report


def messages(report):
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(HOST, {})
            if result.get("failed"):
                found.append(result.get("msg", ""))
    return found


def server_settings():
    password, _mode = lab_secret(f"{HOST}-source-postgres-password")
    with psycopg.connect(
        host="127.0.0.1",
        port=LEGACY_VMS[HOST]["lab_pg_host_port"],
        user="odoo_migration",
        password=password,
        dbname="postgres",
    ) as connection:
        rows = connection.execute(
            "SELECT name, setting, pending_restart FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)
        ).fetchall()
    return {name: (setting, pending) for name, setting, pending in rows}


def restore_legacy_settings():
    password, _mode = lab_secret(f"{HOST}-source-postgres-password")
    with psycopg.connect(
        host="127.0.0.1",
        port=LEGACY_VMS[HOST]["lab_pg_host_port"],
        user="odoo_migration",
        password=password,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        for name in SETTINGS:
            connection.execute(f"ALTER SYSTEM RESET {name}")
    ansible_adhoc(
        HOST, "ansible.builtin.systemd_service", "name=postgresql@17-main state=restarted", become=True
    )


def odoo_health():
    url = f"http://127.0.0.1:{LEGACY_VMS[HOST]['lab_http_port']}/web/health"
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status


@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("replicate-state")
    rc, report = playbook("discover.yml", state_dir)
    assert rc == 0, report
    yield state_dir
    restore_legacy_settings()


def test_without_consent_nothing_changes_and_the_message_says_why(discovered):
    before = server_settings()
    rc, report = playbook("replicate.yml", discovered)
    assert rc != 0
    (message,) = messages(report)
    assert "needs a restart for wal_level" in message and "pg_replicate_allow_restart=true" in message
    assert "nothing was changed" in message
    assert server_settings() == before
    assert before["wal_level"] == ("replica", False)


def test_with_consent_wal_level_is_logical_and_odoo_is_back(discovered):
    rc, report = playbook("replicate.yml", discovered, "-e", "pg_replicate_allow_restart=true")
    assert rc == 0, messages(report)
    assert report["stats"][HOST]["changed"] > 0
    settings = server_settings()
    assert settings["wal_level"] == ("logical", False)
    assert settings["max_replication_slots"][0] == "10"
    assert odoo_health() == 200


def test_second_run_changes_nothing(discovered):
    rc, report = playbook("replicate.yml", discovered, "-e", "pg_replicate_allow_restart=true")
    assert rc == 0, messages(report)
    assert report["stats"][HOST]["changed"] == 0


def test_without_a_profile_it_refuses(tmp_path):
    rc, report = playbook("replicate.yml", tmp_path)
    assert rc != 0
    assert "run playbooks/discover.yml for this host first" in messages(report)[0]
