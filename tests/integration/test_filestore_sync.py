"""odoo_filestore_sync pulls each lab database's filestore over SSH and proves every file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LEGACY_VMS, REPO, STATE_DIR, ansible_adhoc, psql

SSH_OPTIONS = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
# A scratch directory on the VM that the push tests fill and remove (never Odoo's own filestore).
SCRATCH = "/tmp/odoo-mig-fs-test"


def ssh_spec(host):
    return {
        "host": "127.0.0.1",
        "port": LEGACY_VMS[host]["lab_ssh_port"],
        "user": "labadmin",
        "private_key_file": str(STATE_DIR / "ssh" / "id_ed25519"),
        "options": SSH_OPTIONS,
    }


def store_fnames_of(host, database):
    query = "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
    return [row[0] for row in psql(host, database, query)]


def run_module(args, check=False):
    """odoo_filestore_sync on the Docker host, as a playbook task would run it: its result."""
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
    return json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["lab-docker-host"]


def sync(host, database, destination, check=False):
    store_fnames = store_fnames_of(host, database)
    args = {
        "source_path": f"{LEGACY_VMS[host]['lab_odoo_data_dir']}/filestore/{database}",
        "destination_path": str(destination),
        "source_ssh": ssh_spec(host),
        "owner_uid": 100,
        "owner_gid": 101,
        "store_fnames": store_fnames,
    }
    return run_module(args, check), store_fnames


def on_vm(host, command):
    """A shell command as root on the VM: its stdout."""
    result = ansible_adhoc(host, "ansible.builtin.shell", command, become=True)[host]
    assert result.get("rc") == 0, result.get("stderr") or result.get("msg")
    return result["stdout"]


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
def test_a_lost_file_is_resent_alone_and_a_corrupt_one_sent_again(host, tmp_path):
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
    # Same size, other bytes: the size delta cannot see it, the proof can; the file is sent again.
    good = files[1].read_bytes()
    files[1].write_bytes(b"x" * files[1].stat().st_size)
    mended, _names = sync(host, database, destination)
    assert not mended.get("failed"), mended.get("msg")
    assert mended["replaced_corrupt_files"] == [str(files[1].relative_to(destination))]
    assert mended["corrupt_files"] == [] and mended["changed"] is True
    assert files[1].read_bytes() == good


# The Odoo user of each lab layout: the rollback gives the files back to it, by name.
ODOO_USERS = {"packaged": "odoo", "source": "erp"}


@pytest.fixture
def scratch(legacy_vm):
    host = legacy_vm[0]
    on_vm(host, f"rm -rf {SCRATCH}")
    yield host
    on_vm(host, f"rm -rf {SCRATCH}")


def test_push_back_to_the_vm_is_proven_there_and_owned_by_its_odoo_user(scratch, tmp_path):
    host = scratch
    database = LEGACY_VMS[host]["lab_odoo_databases"][0]
    user = ODOO_USERS[LEGACY_VMS[host]["lab_odoo_variant"]]
    copy = tmp_path / database
    pulled, store_fnames = sync(host, database, copy)
    assert not pulled.get("failed"), pulled.get("msg")
    push = {
        "source_path": str(copy),
        "destination_path": SCRATCH,
        "destination_ssh": ssh_spec(host),
        "owner": user,
        "group": user,
        "store_fnames": store_fnames,
    }
    planned = run_module(push, check=True)
    assert (planned["changed"], planned["sent_files"], planned["destination_files"]) == (
        True,
        pulled["source_files"],
        0,
    )
    assert len(planned["missing_attachments"]) == len(set(store_fnames))
    assert on_vm(host, f"test -e {SCRATCH} && echo present || echo absent") == "absent"

    pushed = run_module(push)
    assert not pushed.get("failed"), pushed.get("msg")
    assert (
        pushed["sent_files"]
        == pushed["verified_files"]
        == pushed["destination_files"]
        == pulled["source_files"]
    )
    assert pushed["changed"] is True and pushed["ownership_fixed"] > pushed["sent_files"]
    owners = on_vm(host, f"find {SCRATCH} -printf '%u:%g\\n' | sort -u")
    assert owners.split() == [f"{user}:{user}"]
    listing = on_vm(host, f"cd {SCRATCH} && find . -type f -printf '%P\\n' | sort")
    assert listing.split() == sorted(
        str(path.relative_to(copy)) for path in copy.rglob("*") if path.is_file()
    )

    again = run_module(push)
    assert (again["changed"], again["sent_files"], again["ownership_fixed"]) == (False, 0, 0)
    assert again["verified_files"] == pushed["verified_files"] and not again.get("failed")

    # Ownership changed behind our back: check mode tells, writes nothing; the next run fixes it.
    some = sorted(listing.split())[0]
    on_vm(host, f"chown root:root {SCRATCH}/{some}")
    planned = run_module(push, check=True)
    assert (planned["changed"], planned["sent_files"], planned["ownership_fixed"]) == (True, 0, 1)
    assert on_vm(host, f"stat -c %U {SCRATCH}/{some}") == "root"
    assert run_module(push)["ownership_fixed"] == 1

    # A file lost on the VM is sent alone; one rewritten in place is found by its hash and sent again;
    # an unknown name is missing and fails the run.
    lost, damaged = sorted(path for path in copy.rglob("*") if path.is_file())[:2]
    byte = "y" if damaged.read_bytes()[:1] == b"x" else "x"
    lost, damaged = str(lost.relative_to(copy)), str(damaged.relative_to(copy))
    on_vm(host, f"rm {SCRATCH}/{lost} && printf {byte} | dd of={SCRATCH}/{damaged} conv=notrunc status=none")
    absent_name = "00/" + "0" * 40
    broken = run_module(dict(push, store_fnames=store_fnames + [absent_name]))
    assert broken["failed"] is True and "not a faithful copy" in broken["msg"]
    assert (broken["sent_files"], broken["corrupt_files"], broken["replaced_corrupt_files"]) == (
        1,
        [],
        [damaged],
    )
    assert broken["missing_attachments"] == [absent_name]
    assert on_vm(host, f"sha1sum {SCRATCH}/{damaged}").split()[0] == damaged.split("/")[1]

    unknown = run_module(dict(push, owner="no-such-user"))
    assert unknown["failed"] is True and "no user no-such-user" in unknown["msg"]
