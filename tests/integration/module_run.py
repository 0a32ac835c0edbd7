"""Run one of the collection's modules through ansible-playbook and return its result.

The play is written to a file under pytest's tmp dir (mode 0600), so passwords never appear
on a command line; the JSON callback's result is returned, and it is checked that neither
endpoint's password appears in it or in ansible's output.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _ansible_env

REPO = Path(__file__).resolve().parents[2]


def playbook_file(tmp_path, module, args, check=False):
    path = tmp_path / f"play-{module}-{time.monotonic_ns()}.yml"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{"name": module, "sysgenpro.odoo_migration." + module: args, "check_mode": check}],
        }
    ]
    path.write_text(json.dumps(play))
    os.chmod(path, 0o600)
    return path


def ansible_env():
    """The suite's ansible environment (JSON callback), modules run by this Python."""
    env = _ansible_env()
    env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
    return env


def ansible_command(path):
    return [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        "localhost,",
        "-c",
        "local",
        str(path),
    ]


def run_module(tmp_path, module, args, check=False, timeout=240):
    path = playbook_file(tmp_path, module, args, check)
    run = subprocess.run(
        ansible_command(path),
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"ansible printed no JSON (rc={run.returncode}): {run.stdout[-3000:]} {run.stderr[-2000:]}"
        )
    result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    for secret in args["source"]["password"], args["target"]["password"]:
        assert secret not in json.dumps(result)
        assert secret not in run.stdout + run.stderr
    return result
