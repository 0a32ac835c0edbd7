"""What the lab benchmarks share: running the collection's playbooks on the lab, reading its inventory."""

import json
import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"


def measured_on(peer):
    """When and where a result was measured, and against which peer."""
    return dict(
        measured_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine=f"{os.cpu_count()} CPUs",
        peer=peer,
    )


def write_results(name, report, text):
    """benchmarks/results/<name>.json and .md; the markdown is printed too."""
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / f"{name}.md").write_text(text)
    print(text)


def inventory_host(host):
    """The lab inventory's variables of one host."""
    listed = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", "inventories/lab", "--host", host],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(listed.stdout)


def group_hosts(group):
    """The lab inventory's hosts of a group, sorted."""
    listed = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", "inventories/lab", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    inventory = json.loads(listed.stdout)
    hosts, groups = set(), [group]
    while groups:
        entry = inventory.get(groups.pop(), {})
        hosts.update(entry.get("hosts", []))
        groups.extend(entry.get("children", []))
    return sorted(hosts)


def playbook(name, *args, timeout=1800):
    """Run playbooks/<name> (or a path under the repository) on the lab; exit with its output on failure."""
    path = REPO / name if "/" in name else REPO / "playbooks" / name
    command = [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/lab", str(path), *args]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="default")
    run = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if run.returncode != 0:
        raise SystemExit(f"{name} failed (rc {run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
