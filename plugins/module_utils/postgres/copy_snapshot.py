# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy's snapshot, private: the slot created with an exported snapshot, held by a detached
process between runs, and the decision to resume a copy or start it again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    snapshot_holder as _snapshot_holder,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_common import (
    APPLICATION_NAME,
    HOLDER_IDLE_SECONDS,
    HOLDER_MAX_SECONDS,
    ReplicationError,
    _connect,
    _set_state,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    literal as quote_literal,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import quote_ident


def resume_decision(state, holder_alive):
    """What to do with the copy, given the target's copy_state and whether the snapshot
    can still be imported. Returns (action, message): action one of
    'start' (no slot yet), 'resume' (slot and snapshot alive, data not done),
    'restart_required' (data not done and the snapshot is lost), 'copied' (data done)."""
    if state.get("data") == "done":
        return "copied", "every chunk is copied"
    if not state.get("slot"):
        return "start", "no slot yet: create it and export its snapshot"
    if holder_alive:
        return "resume", "the snapshot of slot %s is still held: resume the copy" % state.get("slot")
    return "restart_required", (
        "the copy of slot %s is incomplete and its exported snapshot is gone (the snapshot holder "
        "process or its connection ended), so the remaining chunks cannot be copied at the same "
        "instant as the done ones. Restart the copy from scratch: run this module with state=absent "
        "and drop_target_database=true (drops subscription, slot, publication, helper schema and "
        "the target database), then state=replicating again." % state.get("slot")
    )


def start_snapshot_holder(
    endpoint, slot, max_seconds=HOLDER_MAX_SECONDS, python=None, idle_seconds=HOLDER_IDLE_SECONDS
):
    """Start the detached holder of the slot's snapshot; return its JSON line (slot, lsn,
    snapshot, backend_pid)."""
    try:
        return _snapshot_holder.start(
            [endpoint],
            APPLICATION_NAME + "_snapshot_holder",
            quote_ident(slot),
            max_seconds,
            python,
            watch=dict(application_name=APPLICATION_NAME, idle_seconds=idle_seconds),
        )[0]
    except _snapshot_holder.HolderError as error:
        raise ReplicationError(
            "cannot create replication slot %s with an exported snapshot: %s" % (slot, error)
        )


def snapshot_importable(endpoint, snapshot):
    """True when a new transaction can still import `snapshot` (its holder is alive)."""
    if not snapshot:
        return False
    conn = _connect(endpoint)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            conn.execute("SET TRANSACTION SNAPSHOT %s" % quote_literal(snapshot))
            return True
        except _pg.psycopg.Error:
            return False
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


def release_holder(source_conn, backend_pid):
    """End the holder's replication connection (the holder process exits with it)."""
    return _snapshot_holder.release(source_conn, backend_pid, APPLICATION_NAME + "_snapshot_holder")


class SlotSnapshot:
    """Steps of Migration (postgres/replication.py): this mixin uses its attributes."""

    def _create_slot(self):
        info = start_snapshot_holder(self.source, self.slot)
        tgt = self._target_conn()
        try:
            with tgt.transaction():
                _set_state(tgt, "slot", info["slot"])
                _set_state(tgt, "snapshot", info["snapshot"])
                _set_state(tgt, "consistent_lsn", info["lsn"])
                _set_state(tgt, "holder_backend_pid", info["backend_pid"])
                _set_state(tgt, "holder_pid", info["holder_pid"])
        finally:
            tgt.close()
        return True, {
            "slot": info["slot"],
            "snapshot": info["snapshot"],
            "consistent_lsn": info["lsn"],
            "holder_backend_pid": str(info["backend_pid"]),
        }
