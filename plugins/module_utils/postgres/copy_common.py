# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the copy's steps share, private: names, the target's bookkeeping, the step log."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    helper_schema as _helper_schema,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.replica_identity import (
    REPLICA_IDENTITY_POLICIES,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import quote_ident

APPLICATION_NAME = "odoo_migration_replication"
HELPER_SCHEMA = "odoo_migration"
PUBLICATION = "odoo_migration"
SUBSCRIPTION = "odoo_migration"
DEFAULT_SLOT = "odoo_migration"
DEFAULT_JOBS = 4
DEFAULT_CHUNK_ROWS = 100000
ABORT_RATIO = 0.8
# The copy's snapshot holder ends when the copy subscribes, or once no run of the copy was connected
# for HOLDER_IDLE_SECONDS (a re-run within that time resumes the copy), and never later than this.
HOLDER_MAX_SECONDS = 24 * 3600
HOLDER_IDLE_SECONDS = 15 * 60
COPY_BUFFER = 1 << 20
# Whole tables from this size on are copied with TRUNCATE + COPY FREEZE (below it the hint
# bits saved are not worth a TRUNCATE's new files; most Odoo tables are empty or tiny).
FREEZE_MIN_BYTES = 8 << 20
# Foreign keys of tables from this size on are added NOT VALID and validated in parallel.
VALIDATE_LATER_BYTES = 8 << 20
POLICIES = REPLICA_IDENTITY_POLICIES + ("index_only",)

# State keys on the target, in the order they are reached.
PHASES = ("pre_data", "early_keys", "slot", "plan", "data", "post_data", "analyze", "subscription")


class ReplicationError(_pg.PgError):
    """A step of the migration failed; the message says what to do (no secret in it)."""


def qname(schema, name):
    return "%s.%s" % (quote_ident(schema), quote_ident(name))


class StepLog:
    """Every step with its duration; `steps` is what the module returns."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.steps = []

    def run(self, name, func, *args, **kwargs):
        started = self.clock()
        entry = {"step": name, "seconds": None, "changed": False, "detail": None}
        self.steps.append(entry)
        try:
            outcome = func(*args, **kwargs)
        finally:
            entry["seconds"] = round(self.clock() - started, 3)
        if isinstance(outcome, tuple):
            entry["changed"], entry["detail"] = bool(outcome[0]), outcome[1]
        else:
            entry["changed"] = bool(outcome)
        return outcome

    def skip(self, name, why):
        self.steps.append({"step": name, "seconds": 0.0, "changed": False, "detail": "skipped: %s" % why})

    @property
    def changed(self):
        return any(step["changed"] for step in self.steps)


# pg_subscription is shared by the whole cluster: a name is only unique within one database.
SUBSCRIPTION_HERE = (
    "SELECT 1 AS x FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
    "AND d.datname = current_database() WHERE s.subname = %s"
)


def _one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()


def _all(conn, sql, params=None):
    return conn.execute(sql, params).fetchall()


def _exists_database(conn, name):
    return _one(conn, "SELECT 1 AS x FROM pg_database WHERE datname = %s", (name,)) is not None


def _connect(endpoint, statement_timeout_ms=0):
    return _pg.connect(endpoint, APPLICATION_NAME, statement_timeout_ms=statement_timeout_ms)


def _state(conn):
    """The target's copy_state as a dict ({} when it does not exist yet)."""
    exists = _one(conn, "SELECT to_regclass('odoo_migration.copy_state') IS NOT NULL AS x")["x"]
    if not exists:
        return {}
    return dict(
        (row["key"], row["value"]) for row in _all(conn, "SELECT key, value FROM odoo_migration.copy_state")
    )


def _set_state(conn, key, value):
    conn.execute(
        "INSERT INTO odoo_migration.copy_state (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = clock_timestamp()",
        (key, str(value)),
    )


BOOKKEEPING_SQL = _helper_schema.COPY_BOOKKEEPING_SQL
HELPER_SOURCE_SQL = _helper_schema.SOURCE_SQL
