"""Helpers for tests against the running lab (`make lab-up`).

Everything reaches the lab the way an operator would: Ansible over SSH to the VMs,
HTTP through each VM's nginx on 127.0.0.1, PostgreSQL on its published 127.0.0.1 port.
"""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "lab"
STATE_DIR = REPO / "lab" / ".state"
sys.path.insert(0, str(REPO / "lab" / "seed"))


def _ansible_env():
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    return env


def ansible_adhoc(pattern, module, args="", become_user=None, become=False):
    """Run one ad-hoc module over SSH; return {host: result}."""
    command = [
        str(Path(sys.executable).with_name("ansible")),
        "-i",
        str(INVENTORY),
        pattern,
        "-m",
        module,
        "-a",
        args,
    ]
    if become or become_user:
        command.append("--become")
    if become_user:
        command += ["--become-user", become_user]
    run = subprocess.run(
        command, cwd=REPO, env=_ansible_env(), capture_output=True, text=True, timeout=300, check=False
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"ansible printed no JSON (rc={run.returncode}): {run.stdout[-2000:]} {run.stderr[-2000:]}"
        )
    return report["plays"][0]["tasks"][0]["hosts"]


def run_playbook(name, *args, timeout=900):
    """Run one of the collection's playbooks (or a lab one: lab/playbooks/NAME) on the lab as an
    operator would: (rc, JSON report, output)."""
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(INVENTORY),
        str(REPO / name if "/" in name else REPO / "playbooks" / name),
        *args,
    ]
    run = subprocess.run(
        command, cwd=REPO, env=_ansible_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{name}: no JSON (rc={run.returncode}): {run.stdout[-3000:]} {run.stderr[-3000:]}")
    return run.returncode, report, run.stdout + run.stderr


def wave_playbook(name, state, *extra):
    """A playbook for the lab's wave1 with its own state directory: (rc, JSON report, output)."""
    return run_playbook(name, "-e", "wave=wave1", "-e", f"odoo_migration_state_dir={state}", *extra)


def changed_count(report):
    """Tasks changed on every host of a playbook's JSON report."""
    return sum(stats["changed"] for stats in report["stats"].values())


def lab_inventory():
    """Every host of the `legacy` group, whatever wave it sits in, with its variables."""
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-inventory")),
            "-i",
            str(INVENTORY),
            "--list",
            "--limit",
            "legacy",
        ],
        cwd=REPO,
        env=_ansible_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(run.stdout)["_meta"]["hostvars"]


LEGACY_VMS = lab_inventory()
# The Odoo layouts of the lab (inventory: lab_odoo_variant) and the unit each one runs.
ODOO_SERVICES = {"packaged": "odoo", "source": "odoo-erp"}


def vms_of_variant(variant):
    """Names of the legacy VMs with that Odoo layout."""
    return sorted(host for host, variables in LEGACY_VMS.items() if variables["lab_odoo_variant"] == variant)


def lab_secret(name):
    """A generated lab secret (lab/.state/secrets/NAME) and its file mode."""
    path = STATE_DIR / "secrets" / name
    return path.read_text().strip(), path.stat().st_mode & 0o777


def lab_target(dbname):
    """The target PostgreSQL of the lab, as its superuser (published on 127.0.0.1:5418)."""
    return dict(
        host="127.0.0.1",
        port=5418,
        user="postgres",
        password=lab_secret("target-postgres-password")[0],
        dbname=dbname,
    )


def psql(host, database, query):
    """Run a query as postgres on the VM (its own PostgreSQL port); return rows as lists of strings."""
    port = LEGACY_VMS[host]["lab_pg_port"]
    args = f'psql -XAt -F "|" -p {port} -d {database} -c "{query}"'
    result = ansible_adhoc(host, "ansible.builtin.command", args, become_user="postgres")[host]
    assert result.get("rc") == 0, f"psql on {host} failed: {result.get('stderr') or result.get('msg')}"
    return [line.split("|") for line in result["stdout"].splitlines()]


def scalar(host, database, query):
    return psql(host, database, query)[0][0]


@pytest.fixture(scope="session", params=sorted(LEGACY_VMS))
def legacy_vm(request):
    """One legacy VM of the lab: its name and inventory variables."""
    return request.param, LEGACY_VMS[request.param]


@pytest.fixture(scope="session")
def seeded_databases(legacy_vm):
    """(host, database, scale_mb) for every database the VM serves."""
    host, variables = legacy_vm
    return [
        (
            host,
            database,
            int(
                scalar(
                    host, database, "SELECT value FROM ir_config_parameter WHERE key = 'lab.seed.scale_mb'"
                )
            ),
        )
        for database in variables["lab_odoo_databases"]
    ]


class OdooApi:
    """Odoo's external API (/jsonrpc) through the VM's nginx, as the database's administrator."""

    def __init__(self, host, database):
        self.url = f"http://127.0.0.1:{LEGACY_VMS[host]['lab_http_port']}/jsonrpc"
        self.host_header = f"{host}.lab.internal"
        self.database = database
        self.password = lab_secret("odoo-admin-password")[0]
        self.uid = self.service("common", "login", database, "admin", self.password)
        assert self.uid

    def service(self, service, method, *args):
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"service": service, "method": method, "args": args},
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Host": self.host_header}
        request = urllib.request.Request(self.url, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=300) as response:
            answer = json.load(response)
        assert "error" not in answer, answer["error"].get("data", {}).get("message")
        return answer["result"]

    def call(self, model, method, args, kwargs=None):
        return self.service(
            "object", "execute_kw", self.database, self.uid, self.password, model, method, args, kwargs or {}
        )

    def directory_user(self, login):
        """The Odoo user whose password the directory holds (Odoo keeps her groups): found or created."""
        found = self.call("res.users", "search", [[["login", "=", login]]])
        return (
            found[0] if found else self.call("res.users", "create", [{"login": login, "name": login.title()}])
        )

    def forget_directory_logins(self, *users):
        """Uninstall auth_ldap and delete the directory users again."""
        (module,) = self.call("ir.module.module", "search", [[["name", "=", "auth_ldap"]]])
        self.call("ir.module.module", "button_immediate_uninstall", [[module]])
        self.call("res.users", "unlink", [list(users)])
