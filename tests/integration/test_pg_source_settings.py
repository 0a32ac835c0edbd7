"""pg_replicate's source preparation: wal_level=logical only with consent, Odoo stopped around the restart."""

import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest
import yaml
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


class PublicPoller(threading.Thread):
    """What a user's browser gets from the VM's public nginx, five times a second: status codes seen."""

    def __init__(self):
        super().__init__(daemon=True)
        self.statuses = []
        self.stop = threading.Event()

    def run(self):
        url = f"http://127.0.0.1:{LEGACY_VMS[HOST]['lab_http_port']}/web/login"
        while not self.stop.is_set():
            request = urllib.request.Request(url, headers={"Host": f"{HOST}.lab.internal"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = (error.code, error.headers.get("Retry-After"))
            except (urllib.error.URLError, OSError) as error:
                status = f"no answer: {error}"
            if not self.statuses or self.statuses[-1] != status:
                self.statuses.append(status)
            time.sleep(0.2)


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
    poller = PublicPoller()
    poller.start()
    rc, report = playbook("replicate.yml", discovered, "-e", "pg_replicate_allow_restart=true")
    time.sleep(1)
    poller.stop.set()
    poller.join(15)
    assert rc == 0, messages(report)
    # Users were told (a maintenance page with Retry-After) while Odoo was down, never left with an error.
    assert poller.statuses[0] == 200 and poller.statuses[-1] == 200, poller.statuses
    assert (503, "60") in poller.statuses, poller.statuses
    assert set(poller.statuses) <= {200, (503, "60")}, poller.statuses
    restart = yaml.safe_load((discovered / HOST / "replicate_restart.yml").read_text())
    assert restart["odoo_answers"] and restart["maintenance_seconds"] > 0
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
