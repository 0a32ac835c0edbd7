"""odoo_filestore_sync pulls each lab database's filestore over SSH and proves every file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LEGACY_VMS, REPO, STATE_DIR, ansible_adhoc, psql


def sync(host, database, destination, check=False):
    variables = LEGACY_VMS[host]
    store_fnames = [
        row[0]
        for row in psql(
            host, database, "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
        )
    ]
    args = {
        "source_path": f"{variables['lab_odoo_data_dir']}/filestore/{database}",
        "destination_path": str(destination),
        "source_ssh": {
            "host": "127.0.0.1",
            "port": variables["lab_ssh_port"],
            "user": "labadmin",
            "private_key_file": str(STATE_DIR / "ssh" / "id_ed25519"),
            "options": ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"],
        },
        "owner_uid": 100,
        "owner_gid": 101,
        "store_fnames": store_fnames,
    }
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
        "sysgenpro.odoo_migration.odoo_filestore_sync",
        "-a",
        json.dumps(args),
    ] + (["--check"] if check else [])
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    return json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["lab-docker-host"], store_fnames


def source_file_count(host, database):
    path = f"{LEGACY_VMS[host]['lab_odoo_data_dir']}/filestore/{database}"
    result = ansible_adhoc(
        host,
        "ansible.builtin.shell",
        f"find {path} -path '*/checklist' -prune -o -type f -print | wc -l",
        become=True,
    )
    return int(result[host]["stdout"])


def test_every_database_is_copied_proven_and_owned_by_the_container_user(seeded_databases, tmp_path):
    for host, database, _scale in seeded_databases:
        destination = tmp_path / host / database
        result, store_fnames = sync(host, database, destination)
        assert not result.get("failed"), result.get("msg")
        assert result["source_files"] == source_file_count(host, database) == result["destination_files"]
        assert result["sent_files"] == result["verified_files"] == result["source_files"]
        assert result["missing_attachments"] == [] and len(store_fnames) > 100
        assert (destination.stat().st_uid, destination.stat().st_gid) == (100, 101)
        again, _names = sync(host, database, destination)
        assert (again["changed"], again["sent_files"]) == (False, 0)


@pytest.mark.parametrize("host", sorted(LEGACY_VMS)[:1])
def test_a_lost_file_is_resent_alone_and_a_corrupt_one_is_named(host, tmp_path):
    database = LEGACY_VMS[host]["lab_odoo_databases"][0]
    destination = tmp_path / database
    first, _names = sync(host, database, destination)
    assert not first.get("failed"), first.get("msg")
    files = sorted(path for path in destination.rglob("*") if path.is_file())
    files[0].unlink()
    planned, _names = sync(host, database, destination, check=True)
    assert (planned["changed"], planned["sent_files"]) == (True, 1)
    assert files[0].exists() is False
    resent, _names = sync(host, database, destination)
    assert resent["sent_files"] == 1 and files[0].exists()
    files[1].write_bytes(b"x" * files[1].stat().st_size)
    broken, _names = sync(host, database, destination)
    assert broken["failed"] is True
    assert broken["corrupt_files"] == [str(files[1].relative_to(destination))]
    assert "not a faithful copy" in broken["msg"]
