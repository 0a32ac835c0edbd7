# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detached processes that hold an exported snapshot open between two module runs, private.

The holder's code is holder_process.py, run as its own Python process (python -m).

A snapshot exported by pg_export_snapshot() (or by CREATE_REPLICATION_SLOT ... SNAPSHOT
'export') can be imported by other transactions only while the exporting transaction is
open. A holder is a Python process in its own session: it exports the snapshot, prints one
JSON line (snapshot, backend_pid, and the slot's name and LSN for a slot), closes its output
and keeps its connection idle until the server ends it (pg_terminate_backend through
release()) or max_seconds pass. The copy uses one for its slot; the cutover uses two to
compare both sides at the fence instant after users are back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    holder_process as _holder_process,
)

DEFAULT_MAX_SECONDS = 7 * 24 * 3600


class HolderError(_pg.PgError):
    """The holder could not export its snapshot (the message carries no password)."""


def start(
    endpoints, application_name, slot_ident=None, max_seconds=DEFAULT_MAX_SECONDS, python=None, watch=None
):
    """Start one holder per endpoint, side by side; return their JSON lines in the same order.
    slot_ident: a quoted slot name to create with an exported snapshot (one endpoint).
    watch: {application_name, idle_seconds}: end once no session of that name was in the holder's
    database for idle_seconds (the run that needs the snapshot is gone and did not come back)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    started = []
    for endpoint in endpoints:
        config = {
            "conn": endpoint.connect_kwargs(application_name),
            "slot_ident": slot_ident,
            "max_seconds": max_seconds,
            "watch": watch,
        }
        proc = subprocess.Popen(
            [python or sys.executable, "-m", _holder_process.__name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
        proc.stdin.write(json.dumps(config).encode())
        proc.stdin.close()
        started.append((endpoint, proc))
    infos, problems = [], []
    for endpoint, proc in started:
        line = proc.stdout.readline().decode()
        proc.stdout.close()
        try:
            info = json.loads(line)
        except ValueError:
            proc.wait(timeout=10)
            info = {
                "error": "the snapshot holder printed nothing (exit code %s): is psycopg importable by %s?"
                % (proc.returncode, python or sys.executable)
            }
        if "error" in info:
            proc.wait(timeout=10)
            problems.append(
                "%s: %s" % (endpoint.describe(), _pg.error_text(info["error"], [endpoint.password]))
            )
        infos.append(info)
    if problems:
        for info in infos:
            if "backend_pid" in info:
                _end_process(info)
        raise HolderError("exporting a snapshot failed on " + "; ".join(problems))
    return infos


def _end_process(info):
    try:
        os.kill(int(info["holder_pid"]), 15)
    except (KeyError, ValueError, OSError):
        pass


def release(conn, backend_pid, application_name):
    """End a holder's connection (its process exits with it); False when it was gone already."""
    if not backend_pid:
        return False
    row = conn.execute(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity"
        " WHERE pid = %s AND application_name = %s",
        (int(backend_pid), application_name),
    ).fetchone()
    done = row["done"] if isinstance(row, dict) else (row[0] if row else False)
    return bool(row and done)
