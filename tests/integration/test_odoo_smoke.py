"""odoo_smoke_test against the lab's real Odoo: what passes there, and that a failure names the check."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import LEGACY_VMS, REPO, lab_secret, scalar


def smoke(check=False, **args):
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
    ] + (["--check"] if check else [])
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
        assert (
            "equals checksum" in result["checks"][3]["detail"] and "HTTP 200" in result["checks"][3]["detail"]
        )
        # What it wrote: the login's row, and the web login's for the download.
        assert result["changed"] and result["wrote"] == [
            "res_users_log: one row (the login of admin)",
            "res_users_log: one row (the web login of admin)",
        ]


def test_the_smoke_test_never_rewrites_web_base_url_and_check_mode_writes_nothing():
    """Through an address that is not the public name, an administrator's web login would store that
    address as web.base.url: the module proves the attachment without one. Check mode logs in nowhere."""
    password, _mode = lab_secret("odoo-admin-password")
    host = sorted(LEGACY_VMS)[0]
    database = LEGACY_VMS[host]["lab_odoo_databases"][0]
    setting = "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'"
    frozen = "SELECT count(*) FROM ir_config_parameter WHERE key = 'web.base.url.freeze' AND value <> ''"
    logins = "SELECT count(*) FROM res_users_log"
    base_url = scalar(host, database, setting)
    assert scalar(host, database, frozen) == "0", "the lab's web.base.url must not be frozen for this test"
    url = f"http://127.0.0.1:{LEGACY_VMS[host]['lab_http_port']}"
    assert not base_url.endswith(url.split("://")[1])
    result, _output = smoke(url=url, database=database, password=password)
    assert not result.get("failed"), result.get("msg")
    assert scalar(host, database, setting) == base_url
    attachment = next(check for check in result["checks"] if check["name"] == "attachment")
    assert attachment["ok"] and "read through the external API" in attachment["detail"]
    assert result["wrote"] == ["res_users_log: one row (the login of admin)"]

    before = scalar(host, database, logins)
    planned, _output = smoke(check=True, url=url, database=database, password=password)
    assert not planned.get("failed"), planned.get("msg")
    assert [check["name"] for check in planned["checks"]] == ["health", "version", "websocket"]
    assert [item["name"] for item in planned["skipped_checks"]] == ["login", "attachment", "cron"]
    assert planned["wrote"] == [] and planned["changed"] is True
    assert scalar(host, database, logins) == before and scalar(host, database, setting) == base_url


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
    assert "expected 17.0" in result["msg"] and "login refused for admin" in result["msg"]
    assert wrong not in output
