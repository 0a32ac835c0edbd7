"""The pg_migration_preflight module: argument handling, failures without secrets, check mode."""

import json
import socket

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import preflight as _preflight
from ansible_collections.sysgenpro.odoo_migration.plugins.modules import pg_migration_preflight

PASSWORD = "s3cr'et\\pa ss"


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as leaving:
        pg_migration_preflight.main()
    return leaving.value.code, json.loads(capsys.readouterr().out)


def test_the_module_fails_without_psycopg(monkeypatch, capsys):
    monkeypatch.setattr(_pg, "HAS_PSYCOPG", False)
    code, result = run_module({"source": {"host": "127.0.0.1", "database": "acme"}}, capsys)
    assert code == 1 and result["failed"]
    assert "psycopg" in result["msg"] and "Failed to import the required Python library" in result["msg"]


def test_the_module_failure_carries_no_password(monkeypatch, capsys):
    args = {
        "source": {
            "host": "127.0.0.1",
            "port": _closed_port(),
            "user": "odoo",
            "password": PASSWORD,
            "database": "acme",
            "connect_timeout": 2,
        },
        "wal_sample_seconds": 0,
    }
    code, result = run_module(args, capsys)
    assert code == 1 and result["failed"]
    assert "as odoo, database acme" in result["msg"]
    assert PASSWORD not in json.dumps(result) and "s3cr" not in json.dumps(result)


def test_the_module_returns_the_preflight_unchanged(monkeypatch, capsys):
    seen = {}

    def fake_preflight(source, target, **options):
        seen.update(source=source, target=target, options=options)
        return {"concerns": [], "summary": {"ready": True}}

    monkeypatch.setattr(pg_migration_preflight, "run_preflight", fake_preflight)
    code, result = run_module(
        {
            "source": {"host": "legacy", "database": "acme", "password": PASSWORD},
            "target": {"host": "new"},
            "replica_identity_policy": "full",
            "_ansible_check_mode": True,
        },
        capsys,
    )
    assert code == 0 and result["changed"] is False and result["summary"]["ready"] is True
    assert seen["target"].describe() == "new:5432 as postgres, database postgres"
    assert seen["source"].password == PASSWORD
    assert seen["options"]["replica_identity_policy"] == "full"
    assert seen["options"]["wal_sample_seconds"] == 3.0


def test_the_module_argument_spec_offers_the_documented_policies():
    spec = pg_migration_preflight.argument_spec()
    assert spec["replica_identity_policy"]["choices"] == list(_preflight.REPLICA_IDENTITY_POLICIES)
    assert spec["source"]["options"]["password"]["no_log"] is True
    assert spec["target"]["options"]["password"]["no_log"] is True
