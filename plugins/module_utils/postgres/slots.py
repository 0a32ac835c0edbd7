# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication slots, private: the one way the engine drops one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg

POLL_SECONDS = 0.2


def drop_slot(conn, slot, wait_seconds=10):
    """Drop a slot, ending the walsender attached to it first; False when it did not exist.

    A walsender that was just terminated can hold the slot a moment longer (ObjectInUse): the drop
    is retried until wait_seconds pass."""
    deadline = time.monotonic() + wait_seconds
    while True:
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is None:
            return False
        active_pid = row["active_pid"] if isinstance(row, dict) else row[0]
        if active_pid:
            conn.execute("SELECT pg_terminate_backend(%s)", (active_pid,))
            time.sleep(POLL_SECONDS)
        try:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
        except _pg.psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL_SECONDS)
