"""baseline_identity on the lab's wave: the VMs join the lab's directory (slapd over StartTLS) through SSSD.

A directory user of the admin group logs in over SSH with her key and can sudo; one outside it cannot; the
shared local account is locked; the break-glass account logs in and sudoes with the directory stopped; SSH
takes keys only; a directory user logs in to Odoo with her directory password. A second run and check mode
change nothing;
the bind password reaches neither the output nor any file but sssd.conf (root's, 0640 group root).
"""

import re
import subprocess

import pytest
from conftest import (
    LEGACY_VMS,
    STATE_DIR,
    OdooApi,
    ansible_adhoc,
    changed_count,
    lab_secret,
    wave_playbook,
)

DIRECTORY = "odoo-mig-directory"
SSHD_T = "sshd -T -C user=nobody,host=localhost,addr=127.0.0.1"
CIPHERS = "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com"


def identity_playbook(state, *extra, name="identity.yml"):
    return wave_playbook(name, state, *extra)


def ssh(host, user, command, key=None, options=()):
    """Run command on the VM over SSH as user (with the lab key of that user); (rc, stdout + stderr)."""
    key = key or STATE_DIR / "ssh" / (f"{user}_ed25519" if user != "labadmin" else "id_ed25519")
    argv = [
        "ssh",
        "-i",
        str(key),
        "-p",
        str(LEGACY_VMS[host]["lab_ssh_port"]),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=20",
        *options,
        f"{user}@127.0.0.1",
        command,
    ]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    return run.returncode, run.stdout + run.stderr


def on_vm(host, command):
    return ansible_adhoc(host, "ansible.builtin.command", command, become=True)[host]


@pytest.fixture(scope="module")
def joined(tmp_path_factory):
    state = tmp_path_factory.mktemp("identity-state")
    rc, _report, output = identity_playbook(state, name="discover.yml")
    assert rc == 0, output[-3000:]
    rc, report, output = identity_playbook(state)
    assert rc == 0, output[-3000:]
    return dict(state=state, report=report, output=output)


def test_an_admin_logs_in_with_her_key_and_can_sudo(joined):
    password = lab_secret("directory-alice-password")[0]
    for host in LEGACY_VMS:
        rc, output = ssh(host, "alice", f"echo '{password}' | sudo -S -p '' id -u; id -Gn")
        assert rc == 0, output
        lines = output.split()
        assert lines[0] == "0" and "odoo-admins" in lines, output


def test_a_directory_user_outside_the_admin_group_cannot_log_in(joined):
    for host in LEGACY_VMS:
        rc, output = ssh(host, "bob", "true")
        assert rc != 0, output
        # bob exists for the VM (he resolves through the directory): the access provider refused him.
        assert on_vm(host, "getent passwd bob")["rc"] == 0


def test_ssh_takes_keys_only_and_no_root(joined):
    for host in LEGACY_VMS:
        effective = dict(
            line.split(" ", 1) for line in on_vm(host, SSHD_T)["stdout"].splitlines() if " " in line
        )
        assert effective["permitrootlogin"] == "no"
        assert effective["passwordauthentication"] == "no"
        assert effective["authenticationmethods"] == "publickey"
        assert effective["ciphers"] == CIPHERS
        rc, output = ssh(host, "alice", "true", options=("-o", "PreferredAuthentications=password"))
        assert rc != 0 and "Permission denied (publickey)" in output, output
        assert on_vm(host, "visudo -c")["rc"] == 0


def test_the_shared_local_account_is_locked(joined):
    for host in LEGACY_VMS:
        status = on_vm(host, "passwd --status support")["stdout"].split()
        assert status[1] == "L", status
        assert re.search(r"Account expires\s*: Jan 02, 1970", on_vm(host, "chage -l support")["stdout"])
        identity = (joined["state"] / host / "identity.yml").read_text()
        assert "- support" in identity and "labadmin" in identity


def test_the_break_glass_account_works_with_the_directory_stopped(joined):
    subprocess.run(["docker", "stop", DIRECTORY], check=True, capture_output=True, timeout=60)
    try:
        for host in LEGACY_VMS:
            rc, output = ssh(host, "labadmin", "sudo -n id -u")
            assert rc == 0 and output.split()[0] == "0", output
    finally:
        subprocess.run(["docker", "start", DIRECTORY], check=True, capture_output=True, timeout=60)


def test_a_second_run_and_check_mode_change_nothing(joined):
    rc, report, output = identity_playbook(joined["state"])
    assert rc == 0, output[-3000:]
    assert changed_count(report) == 0, output[-3000:]
    rc, report, output = identity_playbook(joined["state"], "--check")
    assert rc == 0, output[-3000:]
    assert changed_count(report) == 0, output[-3000:]


def test_a_directory_user_logs_in_to_odoo_with_her_directory_password(joined):
    host = "legacy-vm-1"
    (database,) = LEGACY_VMS[host]["lab_odoo_databases"]
    admin = OdooApi(host, database)
    alice = admin.directory_user("alice")
    try:
        rc, report, output = identity_playbook(
            joined["state"], "--limit", host, "-e", "odoo_migration_odoo_ldap=true"
        )
        assert rc == 0, output[-3000:]
        password = lab_secret("directory-alice-password")[0]
        assert password not in output
        assert admin.service("common", "login", database, "alice", password) == alice
        assert not admin.service("common", "login", database, "alice", "not-her-password")
        rc, report, output = identity_playbook(
            joined["state"], "--limit", host, "-e", "odoo_migration_odoo_ldap=true", "--check"
        )
        assert rc == 0 and changed_count(report) == 0, output[-3000:]
    finally:
        # The tests that follow start from the lab's VM as it was built.
        admin.forget_directory_logins(alice)


def test_the_bind_password_stays_in_sssd_conf(joined):
    password = lab_secret("directory-reader-password")[0]
    assert password not in joined["output"]
    for host in LEGACY_VMS:
        stat = on_vm(host, "stat -c '%a %U %G' /etc/sssd/sssd.conf")["stdout"]
        assert stat == "640 root root"
        for path in (joined["state"] / host).iterdir():
            assert password not in path.read_text(errors="replace"), path


def test_a_run_that_would_lock_itself_out_is_refused(joined):
    no_break_glass = '{"odoo_migration_break_glass_accounts": []}'
    rc, _report, output = identity_playbook(joined["state"], "-e", no_break_glass)
    assert rc != 0
    assert "not in baseline_identity_break_glass" in output
