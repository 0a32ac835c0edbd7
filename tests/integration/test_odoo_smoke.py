"""odoo_smoke_test against the lab's real Odoo: what passes there, and that a failure names the check."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import LEGACY_VMS, REPO, lab_secret, scalar


def smoke(**args):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    command = [
        str(Path(sys.executable).with_name("ansible")),
        "lab-docker-host",
        "-m",
        "sysgenpro.odoo_migration.odoo_smoke_test",
        "-a",
        json.dumps(args),
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["lab-docker-host"], run.stdout + run.stderr


def test_every_database_passes_every_check(seeded_databases):
    password, _mode = lab_secret("odoo-admin-password")
    for host, database, _scale in seeded_databases:
        base_url = scalar(host, database, "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'")
        # The public name in the Host header, as a user's browser sends it: Odoo then keeps web.base.url.
        result, _output = smoke(
            url=f"http://127.0.0.1:{LEGACY_VMS[host]['lab_http_port']}",
            database=database,
            password=password,
            expect_version="19.0",
            headers={"Host": base_url.split("://", 1)[1]},
        )
        assert (
            scalar(host, database, "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'")
            == base_url
        )
        assert not result.get("failed"), result.get("msg")
        assert [check["name"] for check in result["checks"]] == [
            "health", "version", "login", "attachment", "cron", "websocket",
        ]  # fmt: skip
        assert all(check["ok"] for check in result["checks"])
        assert "equals checksum" in result["checks"][3]["detail"]


def test_a_wrong_password_or_version_fails_naming_the_check_and_hides_the_password():
    host = sorted(LEGACY_VMS)[0]
    wrong = "not-the-password-5c1e"
    database = LEGACY_VMS[host]["lab_odoo_databases"][0]
    base_url = scalar(host, database, "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'")
    result, output = smoke(
        url=f"http://127.0.0.1:{LEGACY_VMS[host]['lab_http_port']}",
        database=database,
        headers={"Host": base_url.split("://", 1)[1]},
        password=wrong,
        expect_version="17.0",
        checks=["health", "version", "login"],
    )
    assert result["failed"] is True
    assert result["failed_checks"] == ["version", "login"]
    assert "expected 17.0" in result["msg"] and "Access Denied" in result["msg"]
    assert wrong not in output
