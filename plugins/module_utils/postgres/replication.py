# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy-and-follow engine of a PostgreSQL migration (phases P1-P4), private.

prepare source -> prepare target -> snapshot copy -> post-data -> subscription, then watch.

The slot and its snapshot. psycopg 3 has no replication protocol API, but it runs the
replication command `CREATE_REPLICATION_SLOT <slot> LOGICAL pgoutput (SNAPSHOT 'export')`
as a simple query on a `replication=database` connection and returns its row (slot name,
consistent point, snapshot name, plugin; str or bytes depending on the version: both are
accepted). Verified against PostgreSQL 17 (tests/integration/test_pg_replication.py). The
snapshot stays importable only while that connection stays open and idle, so a small
detached process, the *snapshot holder* (holder_process.py, run with the module's Python),
creates the slot and then waits on the idle connection. The copy workers import the
snapshot with `SET TRANSACTION SNAPSHOT`; a copy killed with SIGKILL finds the holder
still alive on re-run and re-imports the same snapshot. If the holder is gone before the
data is copied, the engine stops and says so: copying the rest under a newer snapshot
would silently lose or duplicate rows. The holder is released (its backend terminated)
once the subscription exists on the slot.

Bookkeeping lives on the target, in `odoo_migration.copy_state` (key/value: which phases
are done, slot, snapshot, holder) and `odoo_migration.copy_progress` (one row per chunk);
each chunk's rows commit together with its progress row, so a resumed copy skips done
chunks and redoes a half-done one from scratch (its id range deleted first).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import select
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    large_objects as _large_objects,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    schema_options as _schema_options,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    snapshot_holder as _snapshot_holder,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import tenancy as _tenancy
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.cutover import (
    DATABASE_ROLES_SQL,
    MATERIALIZED_VIEWS_SQL,
    forward_slot,
    refresh_materialized_views,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.replica_identity import (
    POLICY_FULL,
    POLICY_REFUSE,
    REPLICA_IDENTITY_POLICIES,
    collect_tables,
    collect_unique_indexes,
    index_problems,
    pick_identity_index,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    literal as quote_literal,
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

__all__ = ["POLICY_FULL", "POLICY_REFUSE"]

# State keys on the target, in the order they are reached.
PHASES = ("pre_data", "early_keys", "slot", "plan", "data", "post_data", "analyze", "subscription")


class ReplicationError(_pg.PgError):
    """A step of the migration failed; the message says what to do (no secret in it)."""


# --------------------------------------------------------------------------------------
# Pure parts (unit-tested)
# --------------------------------------------------------------------------------------


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


def replica_identity_fixes(tables, indexes, policy):
    """Statements that give every table a replica identity, and tables refused.

    tables: rows of replica_identity.collect_tables; indexes: of collect_unique_indexes.
    policy: full (REPLICA IDENTITY FULL where no usable unique index), refuse (report them),
    index_only (same as refuse; kept for symmetry with the preflight wording).
    Returns (statements, refused): statements as [(table_qualified, sql)].
    """
    if policy not in POLICIES:
        raise ValueError("replica_identity_policy must be one of %s" % ", ".join(POLICIES))
    by_table = {}
    for index in indexes:
        by_table.setdefault(index["table_oid"], []).append(index)
    statements, refused = [], []
    for table in tables:
        if table.get("relkind") == "p" or table.get("relpersistence") == "u":
            continue  # partitions replicate through their leaves; unlogged tables never do
        setting = table.get("relreplident") or "d"
        own = by_table.get(table["oid"], [])
        name = table.get("qualified") or qname(table["schema"], table["name"])
        if setting in ("f", "i"):
            continue
        if setting == "d" and any(ix.get("is_primary") and not index_problems(ix) for ix in own):
            continue
        chosen = pick_identity_index(own)
        if chosen is not None:
            statements.append(
                (
                    name,
                    "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s"
                    % (name, chosen.get("quoted_name") or quote_ident(chosen["name"])),
                )
            )
        elif policy == POLICY_FULL:
            statements.append((name, "ALTER TABLE %s REPLICA IDENTITY FULL" % name))
        else:
            refused.append(name)
    return statements, refused


def plan_chunks(tables, chunk_rows):
    """Split the copy into chunks, largest table first.

    tables: dicts schema, name, bytes, rows (exact or estimated), id_column (a single
    integer primary-key column or None), min_id, max_id (under the snapshot).
    A table with an integer key and more than chunk_rows rows is split into id ranges
    [lo, hi) of about chunk_rows rows each (by the id density); other tables are one chunk
    (lo = hi = None). Returns chunk dicts: schema, name, chunk, lo, hi, bytes, order.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    ordered = sorted(tables, key=lambda t: (-(t.get("bytes") or 0), t["schema"], t["name"]))
    chunks = []
    for table in ordered:
        rows = table.get("rows") or 0
        lo, hi = table.get("min_id"), table.get("max_id")
        if table.get("id_column") and lo is not None and hi is not None and rows > chunk_rows:
            span = hi - lo + 1
            parts = max(1, -(-rows // chunk_rows))
            width = max(1, -(-span // parts))
            start = lo
            number = 0
            while start <= hi:
                end = start + width
                chunks.append(
                    {
                        "schema": table["schema"],
                        "name": table["name"],
                        "chunk": number,
                        "lo": start,
                        "hi": end,
                        "bytes": (table.get("bytes") or 0) // parts,
                    }
                )
                number += 1
                start = end
            # The last range is open-ended, so nothing beyond max_id is missed.
            chunks[-1]["hi"] = None
        else:
            chunks.append(
                {
                    "schema": table["schema"],
                    "name": table["name"],
                    "chunk": 0,
                    "lo": None,
                    "hi": None,
                    "bytes": table.get("bytes") or 0,
                }
            )
    # Big chunks first across tables, so the slowest work starts early.
    chunks.sort(key=lambda c: (-(c["bytes"] or 0), c["schema"], c["name"], c["chunk"]))
    for order, chunk in enumerate(chunks):
        chunk["order"] = order
    return chunks


def chunk_predicate(id_column, lo, hi):
    """WHERE clause of one chunk ('' for a whole-table chunk)."""
    parts = []
    if lo is not None:
        parts.append("%s >= %d" % (quote_ident(id_column), int(lo)))
    if hi is not None:
        parts.append("%s < %d" % (quote_ident(id_column), int(hi)))
    return (" WHERE " + " AND ".join(parts)) if parts else ""


def copy_statements(schema, name, columns, id_column, lo, hi, freeze=True):
    """(source COPY TO, target COPY FROM, target cleanup) for one chunk, binary format.

    A whole-table chunk is copied by `COPY table TO` (no executor projection). With
    `freeze` it is written after a TRUNCATE in the same target transaction, so it can use
    COPY FREEZE: its rows land frozen and all-visible, and the index builds and checks that
    read them next do not dirty every page to set hint bits (a full-page WAL image each,
    with checksums). Without, the table is emptied by DELETE (cheaper for small tables: a
    TRUNCATE makes new files).
    """
    table = qname(schema, name)
    cols = ", ".join(quote_ident(c) for c in columns)
    where = chunk_predicate(id_column, lo, hi) if id_column else ""
    target = "COPY %s (%s) FROM STDIN (FORMAT binary)" % (table, cols)
    if where:
        source = "COPY (SELECT %s FROM ONLY %s%s) TO STDOUT (FORMAT binary)" % (cols, table, where)
        cleanup = "DELETE FROM ONLY %s%s" % (table, where)
    else:
        # COPY of a table name never reads its children, like ONLY.
        source = "COPY %s (%s) TO STDOUT (FORMAT binary)" % (table, cols)
        cleanup = "DELETE FROM ONLY %s" % table
        if freeze:
            target = "COPY %s (%s) FROM STDIN (FORMAT binary, FREEZE)" % (table, cols)
            cleanup = "TRUNCATE ONLY %s" % table
    return source, target, cleanup


def _wait_readable(pgconn):
    # select() releases the GIL while the other copy threads work.
    select.select([pgconn.socket], [], [])
    pgconn.consume_input()


def _next_result(pgconn):
    while pgconn.is_busy():
        _wait_readable(pgconn)
    return pgconn.get_result()


def _result_error(pgconn, result):
    text = (result.error_message if result is not None else pgconn.error_message) or b""
    return _pg.psycopg.OperationalError(text.decode("utf-8", "replace").strip() or "COPY failed")


def pump_copy(conn, sql, write, block=COPY_BUFFER):
    """Run `sql` (a COPY ... TO STDOUT) on conn and hand its data to write() in blocks of
    about `block` bytes; return the number of bytes.

    The server sends COPY TO data one row per message. psycopg's Copy iteration costs a
    generator round trip per row and writing each row on costs a send() per row; reading
    the messages straight from libpq and writing 1 MiB blocks cuts the controller's CPU to
    a third (measured: 3.0 -> 1.0 CPU-s for 668 MiB over 4 streams).
    """
    pgconn = conn.pgconn
    pgconn.send_query(sql.encode("utf-8"))
    result = _next_result(pgconn)
    if result is None or result.status != _pg.psycopg.pq.ExecStatus.COPY_OUT:
        while _next_result(pgconn) is not None:
            pass
        raise _result_error(pgconn, result)
    buffer = bytearray()
    moved = 0
    while True:
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes > 0:
            buffer += data
            if len(buffer) >= block:
                write(buffer)
                moved += len(buffer)
                buffer = bytearray()
        elif nbytes == 0:
            _wait_readable(pgconn)
        elif nbytes == -1:
            break
        else:
            raise _result_error(pgconn, None)
    if buffer:
        write(buffer)
        moved += len(buffer)
    result = _next_result(pgconn)
    failed = result is None or result.status != _pg.psycopg.pq.ExecStatus.COMMAND_OK
    while _next_result(pgconn) is not None:
        pass
    if failed:
        raise _result_error(pgconn, result)
    return moved


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


def subscription_sql(conninfo_text, slot, binary=True, streaming="parallel", target_major=18):
    """CREATE SUBSCRIPTION on an existing slot, no initial copy."""
    options = ["create_slot = false", "slot_name = %s" % quote_literal(slot), "copy_data = false"]
    if binary:
        options.append("binary = true")
    if streaming and target_major >= 14:
        options.append("streaming = %s" % (streaming if target_major >= 16 else "on"))
    if target_major >= 15:
        options.append("disable_on_error = true")
    if target_major >= 16:
        # Applied as the subscription's owner, not each table's: the cutover's prepare stage takes the
        # application role's (the tables' owner's) write privileges before the window.
        options.append("run_as_owner = true")
    return "CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (%s)" % (
        quote_ident(SUBSCRIPTION),
        quote_literal(conninfo_text),
        quote_ident(PUBLICATION),
        ", ".join(options),
    )


# The subscription's connection string, quoted by psycopg's conninfo rules.
conninfo = _pg.build_conninfo


def secret_variants(secret):
    """A password as it can appear in a subscription's SQL: as is, conninfo-escaped, and each
    of those inside an SQL literal (quotes doubled). _pg.redact adds URL and conninfo forms."""
    if not secret:
        return []
    conninfo_form = secret.replace("\\", "\\\\").replace("'", "\\'")
    forms = set([secret, conninfo_form, secret.replace("'", "''"), conninfo_form.replace("'", "''")])
    return sorted(forms, key=len, reverse=True)


def budget_verdict(retained_bytes, budget_bytes, ratio=ABORT_RATIO):
    """(over, limit): over is True when retained WAL exceeds ratio * budget."""
    if not budget_bytes or retained_bytes is None:
        return False, None
    limit = int(budget_bytes * ratio)
    return retained_bytes > limit, limit


# --------------------------------------------------------------------------------------
# SQL helpers
# --------------------------------------------------------------------------------------


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


# CREATE SCHEMA IF NOT EXISTS is not safe against a concurrent creation (a unique violation on
# pg_namespace): every creator of the helper schema takes the same lock first, in its transaction.
BOOKKEEPING_SQL = """
SELECT pg_advisory_xact_lock(hashtext('odoo_migration:helper_schema'));
CREATE SCHEMA IF NOT EXISTS odoo_migration;
CREATE TABLE IF NOT EXISTS odoo_migration.copy_state (
    key text PRIMARY KEY, value text, updated_at timestamptz DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS odoo_migration.copy_progress (
    table_schema text NOT NULL, table_name text NOT NULL, chunk int NOT NULL,
    lo bigint, hi bigint, id_column text, ord int NOT NULL, bytes bigint,
    done boolean NOT NULL DEFAULT false, rows bigint, seconds double precision, attempts int DEFAULT 0,
    done_at timestamptz, PRIMARY KEY (table_schema, table_name, chunk));
"""

HELPER_SOURCE_SQL = """
SELECT pg_advisory_xact_lock(hashtext('odoo_migration:helper_schema'));
CREATE SCHEMA IF NOT EXISTS odoo_migration;
CREATE TABLE IF NOT EXISTS odoo_migration.heartbeat (id int PRIMARY KEY, beat timestamptz);
CREATE TABLE IF NOT EXISTS odoo_migration.marker (
    id bigserial PRIMARY KEY, token text UNIQUE, created_at timestamptz DEFAULT clock_timestamp());
INSERT INTO odoo_migration.heartbeat (id, beat) VALUES (1, clock_timestamp()) ON CONFLICT (id) DO NOTHING;
"""


# --------------------------------------------------------------------------------------
# The snapshot holder
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


class Migration:
    """One source database to one target database; run() brings it to `replicating`."""

    def __init__(
        self,
        source,
        target,
        subscription_conninfo,
        jobs=DEFAULT_JOBS,
        chunk_rows=DEFAULT_CHUNK_ROWS,
        replica_identity_policy=POLICY_REFUSE,
        pg_dump_command=("pg_dump",),
        psql_command=("psql",),
        slot=DEFAULT_SLOT,
        target_database=None,
        check_mode=False,
        log=None,
        subscription_password=None,
        schema_option_policy=_schema_options.POLICY_DROP,
        instance=None,
        role_map=None,
    ):
        self.source = source
        self.target_server = target.with_database("postgres") if target.database is None else target
        self.target_database = target_database or source.database
        self.target = target.with_database(self.target_database)
        self.subscription_conninfo = subscription_conninfo
        self.jobs = max(1, int(jobs))
        self.chunk_rows = int(chunk_rows)
        self.policy = replica_identity_policy
        self.pg_dump_command = list(pg_dump_command)
        self.psql_command = list(psql_command)
        self.slot = slot
        if schema_option_policy not in _schema_options.SCHEMA_OPTION_POLICIES:
            raise ReplicationError(
                "schema_option_policy must be one of %s, not %r"
                % (", ".join(_schema_options.SCHEMA_OPTION_POLICIES), schema_option_policy)
            )
        self.schema_option_policy = schema_option_policy
        self.instance = instance
        self.role_map = dict(role_map or {})
        problems = _tenancy.role_map_problems(self.role_map)
        if problems:
            raise ReplicationError("role_map: " + "; ".join(problems))
        # Option names the target refuses, by scope; check_schema_options fills it before any use.
        self.refused_options = _schema_options.refused_names([])
        self.check_mode = check_mode
        self.log = log or StepLog()
        self.secrets = []
        for secret in (source.password, target.password, subscription_password):
            self.secrets.extend(secret_variants(secret))
        self.result = {"copy": None, "would": [], "schema_options_dropped": [], "target_roles": {}}

    # -- helpers -----------------------------------------------------------------------
    def _fail(self, text):
        raise ReplicationError(_pg.redact(text, self.secrets))

    def _would(self, what):
        self.result["would"].append(what)
        return True, "check mode: would %s" % what

    def _target_conn(self):
        return _connect(self.target)

    # -- P1: source --------------------------------------------------------------------
    def prepare_source(self, conn):
        done = []
        version = _one(conn, "SELECT current_setting('server_version_num')::int AS v")["v"]
        wal_level = _one(conn, "SELECT current_setting('wal_level') AS v")["v"]
        if wal_level != "logical":
            if not self.check_mode:
                self._fail(
                    "wal_level is %s on the source %s; set wal_level = logical and restart it "
                    "(see pg_migration_preflight)" % (wal_level, self.source.describe())
                )
            # Check mode plans on: a real run needs the restart first (pg_replicate does it when allowed).
            self._would(
                "need wal_level = logical on the source (it is %s): a real run fails until it is set and the "
                "server restarted" % wal_level
            )
        helper = _one(
            conn,
            "SELECT to_regclass('odoo_migration.heartbeat') IS NOT NULL AND "
            "to_regclass('odoo_migration.marker') IS NOT NULL AS x",
        )["x"]
        if not helper:
            if self.check_mode:
                self._would("create the helper schema odoo_migration on the source")
            else:
                with conn.transaction():
                    conn.execute(HELPER_SOURCE_SQL)
                done.append("helper schema")
        statements, refused = replica_identity_fixes(
            collect_tables(conn), collect_unique_indexes(conn, version), self.policy
        )
        if refused:
            self._fail(
                "%d table(s) have neither a primary key nor a usable unique index, so UPDATE and DELETE "
                "on them would fail once published: %s. Add a primary key, or set "
                "replica_identity_policy=full (REPLICA IDENTITY FULL)."
                % (len(refused), ", ".join(refused[:20]))
            )
        for _table, sql in statements:
            if self.check_mode:
                self._would(sql)
            else:
                conn.execute(sql)
                done.append(sql)
        self.result["replica_identity_fixes"] = [item[1] for item in statements]
        if not _one(conn, "SELECT 1 AS x FROM pg_publication WHERE pubname = %s", (PUBLICATION,)):
            if self.check_mode:
                self._would("CREATE PUBLICATION odoo_migration FOR ALL TABLES")
            else:
                conn.execute("CREATE PUBLICATION %s FOR ALL TABLES" % quote_ident(PUBLICATION))
                done.append("publication")
        return bool(done) or (self.check_mode and bool(self.result["would"])), ", ".join(done) or None

    # -- P0: options of the source's schema that the target refuses ------------------------
    def check_schema_options(self, source_conn, server_conn):
        """Try the source's column options and storage parameters on the target; refuse or
        plan to drop the ones it does not accept (before anything is written anywhere)."""
        report = _schema_options.refused_on_target(source_conn, server_conn)
        self.refused_options = _schema_options.refused_names(report)
        if not report:
            return False, "the target accepts every option of the source's schema"
        if self.schema_option_policy == _schema_options.POLICY_REFUSE:
            self._fail(
                "the target refuses %d option(s) of the source's schema (schema_option_policy=refuse): %s. "
                "Remove them on the source (ALTER TABLE ... RESET (...), ALTER TABLE ... ALTER COLUMN ... "
                "RESET (...)) or set schema_option_policy=drop to leave them out on the target"
                % (len(report), _schema_options.describe(report))
            )
        self.result["schema_options_dropped"] = report
        return False, "left out on the target (schema_option_policy=drop): %s" % _schema_options.describe(
            report
        )

    def _without_refused_options(self, items):
        return [
            item[:4] + (_schema_options.strip_statement(item[4], self.refused_options),) for item in items
        ]

    # -- P1: target --------------------------------------------------------------------
    def source_roles(self, conn):
        """Roles the source database uses (owners, grantees and their direct members)."""
        return [row["name"] for row in _all(conn, DATABASE_ROLES_SQL)]

    def _target_role(self, role):
        return _tenancy.renamed(role, self.role_map)

    def claim_names(self, source_conn, server_conn):
        """The target names this instance needs (its database, its roles as role_map names
        them): refused when another instance holds one, else claimed for this instance."""
        roles = self.source_roles(source_conn)
        self.result["target_roles"] = dict((role, self._target_role(role)) for role in roles)
        if not self.instance:
            return False, "no instance named: names are not claimed (a dedicated target)"
        targets = [self._target_role(role) for role in roles]
        found = _tenancy.collisions(
            server_conn,
            self.instance,
            [self.target_database],
            targets,
            dict((self._target_role(role), role) for role in roles),
        )
        if found:
            self._fail(
                "instance %s cannot move to this target, its names collide with another tenant's: %s"
                % (self.instance, _tenancy.describe(found))
            )
        if self.check_mode:
            held = _tenancy.read_claims(server_conn)
            wanted = [(_tenancy.DATABASE, self.target_database)] + [(_tenancy.ROLE, role) for role in targets]
            claimed = ["%s %s" % key for key in wanted if key not in held]
            if claimed:
                self._would("claim for %s: %s" % (self.instance, ", ".join(claimed)))
            return bool(claimed), None
        try:
            claimed = _tenancy.claim(server_conn, self.instance, [self.target_database], targets)
        except _tenancy.TenancyError as error:
            self._fail("instance %s cannot move to this target: %s" % (self.instance, error))
        return bool(claimed), ", ".join(claimed) or None

    def restrict_connect(self, server_conn):
        """Only this instance's roles (and superusers) may connect to its database."""
        if not self.instance:
            return False, None
        roles = sorted(set(self.result["target_roles"].values()))
        if not _exists_database(server_conn, self.target_database):
            if self.check_mode:
                self._would("let only %s connect to %s" % (", ".join(roles), self.target_database))
                return True, None
            return False, None
        statements = _tenancy.connect_statements(server_conn, self.target_database, roles)
        for sql in statements:
            if self.check_mode:
                self._would(sql)
            else:
                server_conn.execute(sql)
        return bool(statements), "; ".join(statements) or None

    def prepare_target_roles(self, source_conn, server_conn):
        """Each role the database uses, under its target name (role_map), created NOLOGIN (the
        cutover gives login roles their login), and the memberships among them as on the source."""
        created = []
        roles = self.source_roles(source_conn)
        for source_role in roles:
            role = self._target_role(source_role)
            if _one(server_conn, "SELECT 1 AS x FROM pg_roles WHERE rolname = %s", (role,)):
                continue
            sql = "CREATE ROLE %s NOLOGIN NOSUPERUSER NOREPLICATION NOCREATEDB NOCREATEROLE" % quote_ident(
                role
            )
            if self.check_mode:
                self._would(sql)
            else:
                server_conn.execute(sql)
            created.append(role)
        granted = []
        for row in _all(
            source_conn,
            "SELECT g.rolname::text AS parent, m.rolname::text AS member FROM pg_auth_members a "
            "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
            "WHERE g.rolname = ANY(%s) AND m.rolname = ANY(%s) ORDER BY 1, 2",
            (roles, roles),
        ):
            parent, member = self._target_role(row["parent"]), self._target_role(row["member"])
            if _one(
                server_conn,
                "SELECT 1 AS x FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = %s AND m.rolname = %s",
                (parent, member),
            ):
                continue
            sql = "GRANT %s TO %s" % (quote_ident(parent), quote_ident(member))
            if self.check_mode:
                self._would(sql)
            else:
                server_conn.execute(sql)
            granted.append("%s in %s" % (member, parent))
        detail = []
        if created:
            detail.append("created " + ", ".join(created))
        if granted:
            detail.append("memberships " + ", ".join(granted))
        return bool(created or granted), "; ".join(detail) or None

    def prepare_target_database(self, source_conn, server_conn):
        if _exists_database(server_conn, self.target_database):
            return False, None
        info = _one(
            source_conn,
            "SELECT pg_encoding_to_char(d.encoding) AS encoding, d.datcollate, d.datctype, "
            "pg_get_userbyid(d.datdba) AS owner, d.datdba = 10 AS owner_super "
            "FROM pg_database d JOIN pg_roles a ON a.oid = d.datdba WHERE d.datname = current_database()",
        )
        owner = "" if info["owner_super"] else " OWNER %s" % quote_ident(self._target_role(info["owner"]))
        sql = "CREATE DATABASE %s%s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s" % (
            quote_ident(self.target_database),
            owner,
            quote_literal(info["encoding"]),
            quote_literal(info["datcollate"]),
            quote_literal(info["datctype"]),
        )
        if self.check_mode:
            return self._would(sql)
        server_conn.execute(sql)
        return True, sql

    def _client_env(self, endpoint):
        env = dict(os.environ)
        env.update(
            PGHOST=endpoint.host,
            PGPORT=str(endpoint.port),
            PGUSER=endpoint.user,
            PGDATABASE=endpoint.database,
            PGSSLMODE=endpoint.sslmode,
            PGAPPNAME=APPLICATION_NAME,
        )
        if endpoint.password:
            env["PGPASSWORD"] = endpoint.password
        else:
            env.pop("PGPASSWORD", None)
        return env

    def restore_pre_data(self):
        """pg_dump --section=pre-data of the source piped into psql on the target, in one
        transaction together with the bookkeeping tables and the 'pre_data' state."""
        if self.check_mode:
            return self._would("restore the source's pre-data schema into the target database")
        dump = subprocess.run(
            self.pg_dump_command + ["--section=pre-data", "--no-publications", "--no-subscriptions"],
            env=self._client_env(self.source),
            capture_output=True,
            check=False,
        )
        if dump.returncode != 0:
            self._fail(
                "pg_dump --section=pre-data of the source failed (exit %s): %s"
                % (dump.returncode, dump.stderr.decode(errors="replace")[-2000:])
            )
        # Default privileges are post-data for pg_dump; the rest of post-data comes from the catalog.
        post = subprocess.run(
            self.pg_dump_command + ["--section=post-data", "--no-publications", "--no-subscriptions"],
            env=self._client_env(self.source),
            capture_output=True,
            check=False,
        )
        if post.returncode != 0:
            self._fail(
                "pg_dump --section=post-data of the source failed (exit %s): %s"
                % (post.returncode, post.stderr.decode(errors="replace")[-2000:])
            )
        default_privileges = _tenancy.default_privilege_lines(post.stdout.decode("utf-8", "surrogateescape"))
        text = _schema_options.strip_script(
            dump.stdout.decode("utf-8", "surrogateescape"), self.refused_options
        )
        text += "\n" + "\n".join(default_privileges) + "\n"
        schema = _tenancy.rename_script(text, self.role_map).encode("utf-8", "surrogateescape")
        script = schema + ("\n" + BOOKKEEPING_SQL).encode()
        script += b"\nINSERT INTO odoo_migration.copy_state (key, value) VALUES ('pre_data', 'done');\n"
        restore = subprocess.run(
            self.psql_command + ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-"],
            input=script,
            env=self._client_env(self.target),
            capture_output=True,
            check=False,
        )
        if restore.returncode != 0:
            self._fail(
                "restoring the pre-data schema into the target failed (exit %s); nothing was kept "
                "(one transaction): %s"
                % (restore.returncode, restore.stderr.decode(errors="replace")[-2000:])
            )
        return True, "%d bytes of schema" % len(dump.stdout)

    # -- keys and post-data from the source catalog -------------------------------------
    def source_constraints_and_indexes(self, conn):
        """Post-data objects of the source, as (kind, schema, table, name, sql)."""
        items = []
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, con.conname AS name, con.contype::text AS kind, "
            "pg_get_constraintdef(con.oid) AS def, c.relkind = 'p' AS partitioned, "
            "(SELECT i.indisreplident FROM pg_index i WHERE i.indexrelid = con.conindid) AS replident "
            "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE con.contype IN ('p', 'u', 'x', 'f') AND c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' "
            "AND con.conparentid = 0 ORDER BY 1, 2, 3",
        ):
            table = qname(row["schema"], row["tbl"])
            # On a partitioned table the constraint recurses, so each partition gets its key as
            # on the source (ONLY would leave the partitions without one).
            only = "" if row["partitioned"] else "ONLY "
            sql = "ALTER TABLE %s%s ADD CONSTRAINT %s %s" % (
                only,
                table,
                quote_ident(row["name"]),
                row["def"],
            )
            kind = {"p": "primary_key", "u": "unique", "x": "exclusion", "f": "foreign_key"}[row["kind"]]
            if kind == "unique" and row["replident"]:
                kind = "replident_unique"
            items.append((kind, row["schema"], row["tbl"], row["name"], sql))
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, ic.relname AS name, "
            "pg_get_indexdef(i.indexrelid) AS def, i.indisreplident AS replident, "
            "c.relkind = 'p' AS partitioned "
            "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
            "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname !~ '^pg_' AND NOT EXISTS (SELECT 1 FROM pg_constraint con "
            "  WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')) "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) ORDER BY 1, 2, 3",
        ):
            kind = "replident_index" if row["replident"] else "index"
            # pg_get_indexdef says ON ONLY for a partitioned table's index; without it the
            # index is built on every partition too.
            sql = row["def"].replace(" ON ONLY ", " ON ", 1) if row["partitioned"] else row["def"]
            items.append((kind, row["schema"], row["tbl"], row["name"], sql))
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, t.tgname AS name, pg_get_triggerdef(t.oid) AS def "
            "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT t.tgisinternal AND t.tgparentid = 0 "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
        ):
            items.append(("trigger", row["schema"], row["tbl"], row["name"], row["def"]))
        for row in _all(
            conn,
            "SELECT n.nspname AS schema, c.relname AS tbl, c.relreplident::text AS ri "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND c.relreplident IN ('f', 'i') AND n.nspname !~ '^pg_' "
            "AND n.nspname <> 'information_schema' ORDER BY 1, 2",
        ):
            table = qname(row["schema"], row["tbl"])
            if row["ri"] == "f":
                items.append(
                    (
                        "replident_full",
                        row["schema"],
                        row["tbl"],
                        None,
                        "ALTER TABLE %s REPLICA IDENTITY FULL" % table,
                    )
                )
        return items

    @staticmethod
    def _object_exists(conn, kind, schema, table, name):
        if kind in ("primary_key", "unique", "replident_unique", "exclusion", "foreign_key"):
            sql = (
                "SELECT 1 AS x FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
                "AND con.conname = %s"
            )
            return _one(conn, sql, (schema, table, name)) is not None
        if kind in ("index", "replident_index"):
            return _one(conn, "SELECT to_regclass(%s) IS NOT NULL AS x", (qname(schema, name),))["x"]
        if kind == "trigger":
            sql = (
                "SELECT 1 AS x FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
                "AND t.tgname = %s"
            )
            return _one(conn, sql, (schema, table, name)) is not None
        return False

    def _table_sizes(self):
        """{(schema, table): bytes} on the target, to start the longest work first."""
        conn = self._target_conn()
        try:
            rows = _all(
                conn,
                "SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid)::bigint AS bytes "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'",
            )
        finally:
            conn.close()
        return dict(((r["schema"], r["name"]), r["bytes"]) for r in rows)

    def _apply_items(self, items, parallel=True):
        """Create the objects that are missing on the target, `jobs` at a time, the ones on
        the biggest tables first (so no long index build starts last and runs alone)."""
        todo = []
        conn = self._target_conn()
        try:
            for item in items:
                if item[0] == "replident_full" or not self._object_exists(conn, *item[:4]):
                    todo.append(item)
        finally:
            conn.close()
        if not todo:
            return 0
        sizes = self._table_sizes() if parallel and len(todo) > 1 else {}
        todo.sort(key=lambda item: -(sizes.get((item[1], item[2])) or 0))
        if self.check_mode:
            for item in todo:
                self._would(item[4])
            return len(todo)
        lock = threading.Lock()
        conns = []
        errors = []

        def work(item):
            with lock:
                c = conns.pop() if conns else None
            if c is None:
                c = self._target_conn()
                c.execute("SET maintenance_work_mem = '256MB'")
            try:
                c.execute(item[4])
                if item[0] in ("replident_unique", "replident_index"):
                    index = item[3]
                    c.execute(
                        "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s"
                        % (qname(item[1], item[2]), quote_ident(index))
                    )
            except _pg.psycopg.Error as error:
                errors.append("%s: %s" % (item[4][:200], _pg.error_text(error, self.secrets)))
            with lock:
                conns.append(c)

        with ThreadPoolExecutor(max_workers=self.jobs if parallel else 1) as pool:
            list(pool.map(work, todo))
        for c in conns:
            c.close()
        if errors:
            self._fail(
                "creating %d object(s) on the target failed: %s" % (len(errors), "; ".join(errors[:5]))
            )
        return len(todo)

    def early_keys(self, items):
        """Primary keys and replica-identity indexes: apply needs them, create before data."""
        early = [
            i
            for i in items
            if i[0] in ("primary_key", "replident_unique", "replident_index", "replident_full")
        ]
        count = self._apply_items(early)
        return bool(count), "%d primary key / replica identity object(s)" % count

    def post_data(self, items):
        """Secondary indexes and unique constraints in parallel, then foreign keys, then triggers.

        Foreign keys are added serially on one connection, in batches. ADD FOREIGN KEY holds
        a SHARE ROW EXCLUSIVE lock on the referenced table while it scans the referencing
        one, and nearly every Odoo table references res_users (create_uid, write_uid), so
        in parallel they would queue (and two workers can deadlock on a pair of tables).
        Keys of big tables are added NOT VALID (no scan) and then validated: VALIDATE
        CONSTRAINT locks the referenced table in ROW SHARE mode only, so those scans run in
        parallel, one worker per referencing table. Small tables' keys are added whole (one
        VALIDATE statement per key costs more than their scan). The end state is the same.
        """
        timings = []
        started = time.monotonic()
        rest = [i for i in items if i[0] in ("unique", "exclusion", "index")]
        count = self._apply_items(rest)
        timings.append("indexes %.1fs" % (time.monotonic() - started))
        started = time.monotonic()
        fks = [i for i in items if i[0] == "foreign_key"]
        count += self._add_foreign_keys(fks)
        timings.append("foreign keys added %.1fs" % (time.monotonic() - started))
        started = time.monotonic()
        validated = self._validate_foreign_keys(fks)
        timings.append("%d validated %.1fs" % (validated, time.monotonic() - started))
        count += self._apply_items([i for i in items if i[0] == "trigger"])
        return bool(count or validated), "%d index/constraint/trigger object(s); %s" % (
            count,
            ", ".join(timings),
        )

    @staticmethod
    def _not_valid(item):
        sql = item[4]
        return item if sql.rstrip().endswith("NOT VALID") else item[:4] + (sql + " NOT VALID",)

    def _add_foreign_keys(self, fks, batch=100):
        """Add the missing foreign keys, `batch` per transaction and round trip (an Odoo
        database has thousands; one at a time, round trips dominate), NOT VALID on tables
        of VALIDATE_LATER_BYTES or more. A batch that fails is retried key by key, so the
        error names the key."""
        conn = self._target_conn()
        try:
            have = set(
                (r["schema"], r["tbl"], r["name"])
                for r in _all(
                    conn,
                    "SELECT n.nspname AS schema, c.relname AS tbl, con.conname AS name "
                    "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE con.contype = 'f'",
                )
            )
            # Keys on small tables are added whole (their check is quick, in the same batch);
            # only the big tables' keys are left NOT VALID for the parallel validation.
            sizes = self._table_sizes()
            todo = [
                self._not_valid(i) if (sizes.get((i[1], i[2])) or 0) >= VALIDATE_LATER_BYTES else i
                for i in fks
                if (i[1], i[2], i[3]) not in have
            ]
            if self.check_mode:
                for item in todo:
                    self._would(item[4])
                return len(todo)
            errors = []
            for start in range(0, len(todo), batch):
                part = todo[start : start + batch]
                try:
                    with conn.transaction():
                        conn.execute(";\n".join(item[4] for item in part))
                except _pg.psycopg.Error:
                    for item in part:
                        try:
                            conn.execute(item[4])
                        except _pg.psycopg.Error as error:
                            errors.append("%s: %s" % (item[4][:200], _pg.error_text(error, self.secrets)))
        finally:
            conn.close()
        if errors:
            self._fail(
                "creating %d foreign key(s) on the target failed: %s" % (len(errors), "; ".join(errors[:5]))
            )
        return len(todo)

    def _validate_foreign_keys(self, fks):
        """VALIDATE the target's not-yet-validated foreign keys that are valid on the source,
        `jobs` tables at a time (a table's own keys one after the other: its lock is
        SHARE UPDATE EXCLUSIVE, which conflicts with itself)."""
        wanted = set((i[1], i[2], i[3]) for i in fks if not i[4].rstrip().endswith("NOT VALID"))
        conn = self._target_conn()
        try:
            pending = [
                (r["schema"], r["tbl"], r["name"])
                for r in _all(
                    conn,
                    "SELECT n.nspname AS schema, c.relname AS tbl, con.conname AS name "
                    "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE con.contype = 'f' AND NOT con.convalidated",
                )
            ]
        finally:
            conn.close()
        by_table = {}
        for key in pending:
            if key in wanted:
                by_table.setdefault(key[:2], []).append(key[2])
        if not by_table:
            return 0
        if self.check_mode:
            for table, names in by_table.items():
                for name in names:
                    self._would("VALIDATE CONSTRAINT %s on %s" % (name, qname(*table)))
            return sum(len(n) for n in by_table.values())
        sizes = self._table_sizes()
        tables = sorted(by_table, key=lambda t: -(sizes.get(t) or 0))
        errors = []

        def work(table):
            c = self._target_conn()
            try:
                # The check is an anti-join: room to hash the referenced keys in memory.
                c.execute("SET work_mem = '64MB'")
                for name in by_table[table]:
                    try:
                        c.execute(
                            "ALTER TABLE %s VALIDATE CONSTRAINT %s" % (qname(*table), quote_ident(name))
                        )
                    except _pg.psycopg.Error as error:
                        text = _pg.error_text(error, self.secrets)
                        errors.append("%s.%s: %s" % (qname(*table), name, text))
            finally:
                c.close()

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(work, tables))
        if errors:
            self._fail(
                "validating %d foreign key(s) on the target failed: %s" % (len(errors), "; ".join(errors[:5]))
            )
        return sum(len(n) for n in by_table.values())

    # -- P2: copy ----------------------------------------------------------------------
    def copy_tables(self, src):
        """Tables to copy, with their columns and integer key (from the source catalog)."""
        rows = _all(
            src,
            "SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid)::bigint AS bytes, "
            "greatest(c.reltuples, 0)::bigint AS rows, "
            "(SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid "
            "  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns, "
            "(SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid "
            "   AND a.attnum = con.conkey[1] WHERE con.conrelid = c.oid AND con.contype = 'p' "
            "   AND array_length(con.conkey, 1) = 1 AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, "
            "   'int8'::regtype)) AS id_column "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND c.relpersistence = 'p' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' "
            "ORDER BY 1, 2",
        )
        return rows

    def _plan(self, snapshot):
        """Plan chunks under the snapshot and store them in copy_progress (once)."""
        src = _connect(self.source)
        try:
            src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            src.execute("SET TRANSACTION SNAPSHOT %s" % quote_literal(snapshot))
            tables = self.copy_tables(src)
            for table in tables:
                if table["id_column"] and table["rows"] > self.chunk_rows:
                    col = quote_ident(table["id_column"])
                    row = _one(
                        src,
                        "SELECT min(%s)::bigint AS lo, max(%s)::bigint AS hi, count(*)::bigint AS n "
                        "FROM ONLY %s" % (col, col, qname(table["schema"], table["name"])),
                    )
                    table["min_id"], table["max_id"], table["rows"] = row["lo"], row["hi"], row["n"]
            src.execute("ROLLBACK")
        finally:
            src.close()
        chunks = plan_chunks(tables, self.chunk_rows)
        id_columns = dict(((t["schema"], t["name"]), t["id_column"]) for t in tables)
        tgt = self._target_conn()
        try:
            with tgt.transaction():
                tgt.execute("DELETE FROM odoo_migration.copy_progress")
                with tgt.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO odoo_migration.copy_progress "
                        "(table_schema, table_name, chunk, lo, hi, id_column, ord, bytes) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        [
                            (
                                c["schema"],
                                c["name"],
                                c["chunk"],
                                c["lo"],
                                c["hi"],
                                id_columns[(c["schema"], c["name"])]
                                if c["lo"] is not None or c["hi"] is not None
                                else None,
                                c["order"],
                                c["bytes"],
                            )
                            for c in chunks
                        ],
                    )
                _set_state(tgt, "plan", "done")
        finally:
            tgt.close()
        return True, "%d chunk(s) over %d table(s)" % (len(chunks), len(tables))

    def _copy(self, snapshot):
        tgt = self._target_conn()
        try:
            pending = _all(
                tgt,
                "SELECT table_schema AS schema, table_name AS name, chunk, lo, hi, id_column, attempts, "
                "bytes FROM odoo_migration.copy_progress WHERE NOT done ORDER BY ord",
            )
            total = _one(tgt, "SELECT count(*)::int AS n FROM odoo_migration.copy_progress")["n"]
        finally:
            tgt.close()
        src = _connect(self.source)
        try:
            columns = dict(((t["schema"], t["name"]), t["columns"]) for t in self.copy_tables(src))
        finally:
            src.close()
        skipped = total - len(pending)
        stats = {
            "chunks": total,
            "chunks_skipped": skipped,
            "chunks_copied": 0,
            "rows": 0,
            "bytes": 0,
            "seconds": 0,
        }
        if not pending:
            return stats
        started = time.monotonic()
        queue = list(pending)
        lock = threading.Lock()
        errors = []

        def worker():
            s = _connect(self.source)
            t = _connect(self.target)
            try:
                # A chunk's rows and its copy_progress mark commit in one transaction, so an
                # asynchronous commit lost in a target crash loses both: the chunk is redone.
                # Later synchronous commits (the 'data' state) flush the WAL before them.
                t.execute("SET synchronous_commit = off")
                s.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                s.execute("SET TRANSACTION SNAPSHOT %s" % quote_literal(snapshot))
                while True:
                    with lock:
                        if not queue or errors:
                            return
                        chunk = queue.pop(0)
                    began = time.monotonic()
                    cols = columns[(chunk["schema"], chunk["name"])]
                    copy_out, copy_in, cleanup = copy_statements(
                        chunk["schema"],
                        chunk["name"],
                        cols,
                        chunk["id_column"],
                        chunk["lo"],
                        chunk["hi"],
                        freeze=(chunk["bytes"] or 0) >= FREEZE_MIN_BYTES,
                    )
                    rows = 0
                    size = 0
                    with t.transaction():
                        t.execute(cleanup)
                        into_cursor = t.cursor()
                        with into_cursor.copy(copy_in) as into:
                            size = pump_copy(s, copy_out, into.write)
                        rows = into_cursor.rowcount
                        t.execute(
                            "UPDATE odoo_migration.copy_progress SET done = true, rows = %s, seconds = %s, "
                            "attempts = attempts + 1, done_at = clock_timestamp() "
                            "WHERE table_schema = %s AND table_name = %s AND chunk = %s",
                            (rows, time.monotonic() - began, chunk["schema"], chunk["name"], chunk["chunk"]),
                        )
                    with lock:
                        stats["chunks_copied"] += 1
                        stats["rows"] += rows
                        stats["bytes"] += size
            except Exception as error:  # reported below, with the secrets removed
                with lock:
                    errors.append(_pg.error_text(error, self.secrets))
            finally:
                s.close()
                t.close()

        workers = min(self.jobs, len(pending))
        threads = [threading.Thread(target=worker, daemon=True) for _worker in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats["seconds"] = round(time.monotonic() - started, 3)
        stats["rows_per_second"] = int(stats["rows"] / stats["seconds"]) if stats["seconds"] else None
        self.result["copy"] = stats
        if errors:
            self._fail(
                "the copy failed (%d chunk(s) done are kept; re-run to resume): %s"
                % (stats["chunks_copied"], errors[0])
            )
        return stats

    # -- the whole path ----------------------------------------------------------------
    def run(self):
        log = self.log
        src = _connect(self.source)
        server = _connect(self.target_server)
        try:
            # One run at a time per target database: a second one fails instead of racing.
            locked = _one(
                server,
                "SELECT pg_try_advisory_lock(hashtext(%s)) AS ok",
                ("odoo_migration:" + self.target_database,),
            )["ok"]
            if not locked:
                self._fail(
                    "another pg_logical_migration run for database %s is in progress on the target "
                    "(it holds the advisory lock); wait for it or end it" % self.target_database
                )
            log.run(
                "target: options of the source's schema it refuses", self.check_schema_options, src, server
            )
            log.run("target: names claimed for the instance", self.claim_names, src, server)
            log.run("source: helper schema, replica identity, publication", self.prepare_source, src)
            log.run("target: roles", self.prepare_target_roles, src, server)
            log.run("target: database", self.prepare_target_database, src, server)
            log.run("target: only the instance's roles connect", self.restrict_connect, server)
            if self.check_mode and not _exists_database(server, self.target_database):
                for phase in PHASES:
                    self._would(phase.replace("_", " "))
                return self.finish()
            tgt = self._target_conn()
            try:
                state = _state(tgt)
            finally:
                tgt.close()
            if state.get("pre_data") != "done":
                log.run("target: pre-data schema (pg_dump | psql)", self.restore_pre_data)
            else:
                log.skip("target: pre-data schema (pg_dump | psql)", "done")
            if self.check_mode and state.get("pre_data") != "done":
                return self.finish()
            items = self._without_refused_options(self.source_constraints_and_indexes(src))
            if state.get("subscription") == "done":
                log.skip("copy", "the subscription exists")
                self.result["state"] = state
                return self.finish()
            log.run("target: primary keys and replica identity", self.early_keys, items)
            self._copy_phase(src, state, items)
        finally:
            src.close()
            server.close()
        return self.finish()

    def _copy_phase(self, src, state, items):
        log = self.log
        tgt = self._target_conn()
        try:
            state = _state(tgt)
        finally:
            tgt.close()
        holder_alive = snapshot_importable(self.source, state.get("snapshot")) if state.get("slot") else False
        action, message = resume_decision(state, holder_alive)
        self.result["copy_action"] = action
        if action == "restart_required":
            self._fail(message)
        if action == "start":
            if _one(src, "SELECT 1 AS x FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)):
                self._fail(
                    "replication slot %s already exists on the source but the target has no record of it: "
                    "run state=absent first (it drops the slot)" % self.slot
                )
            if self.check_mode:
                self._would("create slot %s with an exported snapshot and copy every table" % self.slot)
                return
            info = log.run("source: slot with exported snapshot (holder)", self._create_slot)
            state = dict(state, **info[1])
        snapshot = state["snapshot"]
        if action in ("start", "resume"):
            if self.check_mode:
                self._would("resume the copy under snapshot %s" % snapshot)
                return
            if state.get("plan") != "done":
                log.run("plan chunks", self._plan, snapshot)
            log.run("copy data (parallel COPY binary)", lambda: (True, self._copy(snapshot)))
            log.run("copy large objects under the snapshot", self._copy_large_objects, snapshot)
            tgt = self._target_conn()
            try:
                _set_state(tgt, "data", "done")
            finally:
                tgt.close()
        if state.get("post_data") != "done":
            log.run("target: secondary indexes, constraints, foreign keys, triggers", self.post_data, items)
            log.run(
                "target: materialized views populated as on the source", self._refresh_materialized_views, src
            )
            if not self.check_mode:
                self._mark("post_data")
        if state.get("analyze") != "done":
            if self.check_mode:
                self._would("ANALYZE the target database")
            else:
                log.run("target: ANALYZE", self._analyze)
                self._mark("analyze")
        log.run("target: subscription on the slot", self._subscribe, src, state)

    def _copy_large_objects(self, snapshot):
        """Large objects as of the slot's snapshot (replication does not carry them; the
        cutover copies their later changes inside its fence)."""
        src = _connect(self.source)
        tgt = self._target_conn()
        try:
            src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            src.execute("SET TRANSACTION SNAPSHOT %s" % quote_literal(snapshot))
            done = _large_objects.sync(src, tgt, self.role_map)
            src.execute("ROLLBACK")
        except _pg.psycopg.Error as error:
            self._fail("copying large objects failed: %s" % _pg.error_text(error, self.secrets))
        finally:
            src.close()
            tgt.close()
        self.result["large_objects"] = done
        return bool(done["copied"] or done["removed"]), "%(objects)d object(s), %(copied)d copied" % done

    def _refresh_materialized_views(self, src):
        """pg_dump creates them WITH NO DATA; the ones populated on the source are filled from
        the copied tables (the cutover refreshes them again once writes move)."""
        names = [row["name"] for row in _all(src, MATERIALIZED_VIEWS_SQL)]
        if not names:
            return False, None
        if self.check_mode:
            for name in names:
                self._would("REFRESH MATERIALIZED VIEW %s" % name)
            return True, None
        tgt = self._target_conn()
        try:
            refreshed, failed = refresh_materialized_views(tgt, names, self.secrets)
        finally:
            tgt.close()
        if failed:
            self._fail(
                "refreshing materialized views failed: %s"
                % "; ".join("%(name)s: %(error)s" % f for f in failed)
            )
        return True, "%d refreshed" % len(refreshed)

    def _mark(self, key):
        tgt = self._target_conn()
        try:
            _set_state(tgt, key, "done")
        finally:
            tgt.close()

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

    def _analyze(self):
        """ANALYZE every table, `jobs` at a time, biggest first (a database-wide ANALYZE
        works through the tables one by one on a single backend)."""
        sizes = self._table_sizes()
        tables = sorted(sizes, key=lambda t: -(sizes[t] or 0))
        errors = []

        def work(chunk):
            c = self._target_conn()
            try:
                for table in chunk:
                    try:
                        c.execute("ANALYZE %s" % qname(*table))
                    except _pg.psycopg.Error as error:
                        errors.append("%s: %s" % (qname(*table), _pg.error_text(error, self.secrets)))
            finally:
                c.close()

        # One connection per worker: tables dealt round-robin, biggest first.
        workers = max(1, min(self.jobs, len(tables)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, [tables[i::workers] for i in range(workers)]))
        if errors:
            self._fail("ANALYZE failed on the target: %s" % "; ".join(errors[:5]))
        return True, "%d table(s)" % len(tables)

    def _subscribe(self, src, state):
        tgt = self._target_conn()
        try:
            exists = _one(tgt, SUBSCRIPTION_HERE, (SUBSCRIPTION,))
            changed = False
            if not exists:
                if self.check_mode:
                    return self._would("CREATE SUBSCRIPTION odoo_migration on slot %s" % self.slot)
                major = _one(tgt, "SELECT current_setting('server_version_num')::int / 10000 AS v")["v"]
                sql = subscription_sql(self.subscription_conninfo, self.slot, target_major=major)
                try:
                    _pg.execute_with_secret(tgt, sql)
                except _pg.psycopg.Error as error:
                    self._fail(
                        "CREATE SUBSCRIPTION failed on the target: %s" % _pg.error_text(error, self.secrets)
                    )
                changed = True
            released = release_holder(src, state.get("holder_backend_pid"))
            _set_state(tgt, "subscription", "done")
        finally:
            tgt.close()
        return changed, "holder released" if released else None

    def finish(self):
        self.result["steps"] = self.log.steps
        # What an auditor must find in the migration's journal (the audit callback keeps it).
        self.result["journal"] = dict(
            database=self.target_database,
            schema_options_dropped=[
                dict((key, item[key]) for key in ("scope", "option", "objects"))
                for item in self.result["schema_options_dropped"]
            ],
            large_objects=self.result.get("large_objects"),
            instance=self.instance,
            target_roles=self.result["target_roles"],
        )
        self.result["changed"] = self.log.changed or bool(self.result["would"])
        return self.result


# --------------------------------------------------------------------------------------
# absent: the clean undo
# --------------------------------------------------------------------------------------


def remove(
    source,
    target,
    slot=DEFAULT_SLOT,
    target_database=None,
    drop_target_database=False,
    check_mode=False,
    instance=None,
):
    """Drop subscription (target), slot, publication and helper schema (source), and the
    target's bookkeeping (or the whole target database). Returns (changed, steps)."""
    log = StepLog()
    target_database = target_database or source.database
    actions = []

    def target_side():
        done = []
        server = _connect(target.with_database("postgres"))
        try:
            if not _exists_database(server, target_database):
                return False
            tgt = _connect(target.with_database(target_database))
            try:
                if _one(tgt, SUBSCRIPTION_HERE, (SUBSCRIPTION,)):
                    done.append("drop subscription")
                    if not check_mode:
                        tgt.execute("ALTER SUBSCRIPTION %s DISABLE" % quote_ident(SUBSCRIPTION))
                        tgt.execute(
                            "ALTER SUBSCRIPTION %s SET (slot_name = NONE)" % quote_ident(SUBSCRIPTION)
                        )
                        tgt.execute("DROP SUBSCRIPTION %s" % quote_ident(SUBSCRIPTION))
                if (
                    not drop_target_database
                    and _one(tgt, "SELECT to_regclass('odoo_migration.copy_state') IS NOT NULL AS x")["x"]
                ):
                    done.append("drop copy bookkeeping")
                    if not check_mode:
                        tgt.execute("DROP TABLE odoo_migration.copy_state, odoo_migration.copy_progress")
            finally:
                tgt.close()
            if drop_target_database:
                done.append("drop target database %s" % target_database)
                if not check_mode:
                    server.execute("DROP DATABASE %s WITH (FORCE)" % quote_ident(target_database))
                    if instance and _tenancy.release_database(server, instance, target_database):
                        done.append("release the claim of %s on %s" % (instance, target_database))
        finally:
            server.close()
        actions.extend(done)
        return bool(done), ", ".join(done) or None

    def source_side():
        done = []
        src = _connect(source)
        try:
            slot_row = _one(src, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            holders = _all(
                src,
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (APPLICATION_NAME + "_snapshot_holder",),
            )
            if holders:
                done.append("end snapshot holder")
                if not check_mode:
                    for row in holders:
                        src.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
            if slot_row:
                done.append("drop slot %s" % slot)
                if not check_mode:
                    drop_slot(src, slot)
            if _one(src, "SELECT 1 AS x FROM pg_publication WHERE pubname = %s", (PUBLICATION,)):
                done.append("drop publication")
                if not check_mode:
                    src.execute("DROP PUBLICATION %s" % quote_ident(PUBLICATION))
            if _one(src, "SELECT 1 AS x FROM pg_namespace WHERE nspname = %s", (HELPER_SCHEMA,)):
                done.append("drop helper schema")
                if not check_mode:
                    src.execute("DROP SCHEMA %s CASCADE" % quote_ident(HELPER_SCHEMA))
        finally:
            src.close()
        actions.extend(done)
        return bool(done), ", ".join(done) or None

    log.run("target: subscription and copy state", target_side)
    log.run("source: holder, slot, publication, helper schema", source_side)
    return log.changed, log.steps, actions


def drop_slot(src, slot, wait_seconds=10):
    """Drop a slot, ending its walsender first if one is attached."""
    deadline = time.monotonic() + wait_seconds
    while True:
        row = _one(src, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        if row is None:
            return False
        if row["active_pid"]:
            src.execute("SELECT pg_terminate_backend(%s)", (row["active_pid"],))
            time.sleep(0.2)
        try:
            src.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
        except _pg.psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --------------------------------------------------------------------------------------
# P4: watch
# --------------------------------------------------------------------------------------


def _try_connect(endpoint):
    try:
        return _connect(endpoint, statement_timeout_ms=15000), None
    except _pg.PgError as error:
        return None, str(error)


def replication_info(
    source,
    target,
    slot=DEFAULT_SLOT,
    heartbeat_timeout=10.0,
    wal_budget_bytes=None,
    abort_on_budget=False,
    check_mode=False,
    heartbeat=False,
):
    """Lag, slot health, subscription state. Reads only, unless heartbeat (write a heartbeat row on
    the source and time its arrival on the target) or abort_on_budget (drop subscription and slot when
    the retained WAL passes the budget) asks to act; `changed` says whether it wrote (would write)."""
    result = {
        "source": {"reachable": False, "error": None},
        "target": {"reachable": False, "error": None},
        "slot": None,
        "subscription": None,
        "lag_bytes": None,
        "lag_seconds": None,
        "heartbeat_arrived": None,
        "wal_budget_bytes": wal_budget_bytes,
        "wal_budget_limit_bytes": None,
        "over_budget": False,
        "aborted": False,
        "problems": [],
        "changed": False,
    }
    problems = result["problems"]
    src, error = _try_connect(source)
    result["source"]["error"] = error
    tgt, error = _try_connect(target)
    result["target"]["error"] = error
    try:
        beat = None
        if src is not None:
            result["source"]["reachable"] = True
            row = _one(
                src,
                "SELECT slot_name::text, active, active_pid, wal_status, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag_bytes, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes, "
                "safe_wal_size::bigint AS safe_wal_size, confirmed_flush_lsn::text, restart_lsn::text, "
                "(SELECT extract(epoch FROM r.replay_lag)::float8 FROM pg_stat_replication r"
                "  WHERE r.pid = s.active_pid) AS replay_lag_seconds "
                "FROM pg_replication_slots s WHERE slot_name = %s",
                (slot,),
            )
            if row is None:
                problems.append("replication slot %s does not exist on the source" % slot)
            else:
                result["slot"] = dict(row)
                result["lag_bytes"] = row["lag_bytes"]
                if not row["active"]:
                    problems.append(
                        "slot %s is not active: no subscription is streaming from it (target down, "
                        "network cut or subscription disabled)" % slot
                    )
                if row["wal_status"] in ("unreserved", "lost"):
                    problems.append("slot %s wal_status is %s" % (slot, row["wal_status"]))
            has_heartbeat = (
                heartbeat
                and _one(src, "SELECT to_regclass('odoo_migration.heartbeat') IS NOT NULL AS x")["x"]
            )
            if has_heartbeat:
                result["changed"] = True  # in check mode: would write it
            if has_heartbeat and not check_mode:
                beat = _one(
                    src,
                    "INSERT INTO odoo_migration.heartbeat (id, beat) VALUES (1, clock_timestamp()) "
                    "ON CONFLICT (id) DO UPDATE SET beat = excluded.beat RETURNING beat",
                )["beat"]
        else:
            problems.append("source unreachable: %s" % result["source"]["error"])
        if tgt is not None:
            result["target"]["reachable"] = True
            sub = _one(
                tgt,
                "SELECT s.subname::text AS name, s.subenabled AS enabled, s.subslotname::text AS slot_name, "
                "(SELECT max(st.pid) FROM pg_stat_subscription st WHERE st.subid = s.oid) AS worker_pid, "
                "(SELECT max(st.last_msg_receipt_time) FROM pg_stat_subscription st WHERE st.subid = s.oid) "
                "  AS last_msg_receipt_time, "
                "(SELECT max(st.latest_end_lsn)::text FROM pg_stat_subscription st WHERE st.subid = s.oid) "
                "  AS latest_end_lsn, "
                "ss.apply_error_count, ss.sync_error_count "
                "FROM pg_subscription s LEFT JOIN pg_stat_subscription_stats ss ON ss.subid = s.oid "
                "WHERE s.subname = %s "
                "AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (SUBSCRIPTION,),
            )
            if sub is None:
                problems.append("subscription %s does not exist on the target" % SUBSCRIPTION)
            else:
                sub = dict(sub)
                if sub["last_msg_receipt_time"] is not None:
                    sub["last_msg_receipt_time"] = sub["last_msg_receipt_time"].isoformat()
                result["subscription"] = sub
                if not sub["enabled"]:
                    problems.append(
                        "subscription %s is disabled (disable_on_error after an apply error?)" % SUBSCRIPTION
                    )
                if not sub["worker_pid"] and sub["enabled"]:
                    problems.append("subscription %s has no running apply worker" % SUBSCRIPTION)
                if sub["apply_error_count"]:
                    problems.append(
                        "subscription %s counted %s apply error(s)" % (SUBSCRIPTION, sub["apply_error_count"])
                    )
            if beat is not None and sub is not None:
                deadline = time.monotonic() + heartbeat_timeout
                started = time.monotonic()
                arrived = False
                while True:
                    row = _one(tgt, "SELECT beat FROM odoo_migration.heartbeat WHERE id = 1")
                    if row and row["beat"] is not None and row["beat"] >= beat:
                        arrived = True
                        break
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                result["heartbeat_arrived"] = arrived
                if arrived:
                    result["lag_seconds"] = round(time.monotonic() - started, 3)
                else:
                    problems.append(
                        "the heartbeat written on the source did not reach the target within %ss"
                        % heartbeat_timeout
                    )
        else:
            problems.append("target unreachable: %s" % result["target"]["error"])
        slot_row = result["slot"]
        if wal_budget_bytes and slot_row is not None:
            over, limit = budget_verdict(slot_row["retained_bytes"], wal_budget_bytes)
            result["wal_budget_limit_bytes"] = limit
            result["over_budget"] = over
            if over:
                problems.append(
                    "slot %s retains %s bytes of WAL, over %d%% of the budget (%s bytes)"
                    % (slot, slot_row["retained_bytes"], int(ABORT_RATIO * 100), wal_budget_bytes)
                )
                if abort_on_budget:
                    result["changed"] = True
                    result["aborted"] = True
                    if not check_mode:
                        if tgt is not None and result["subscription"] is not None:
                            tgt.execute("ALTER SUBSCRIPTION %s DISABLE" % quote_ident(SUBSCRIPTION))
                            tgt.execute(
                                "ALTER SUBSCRIPTION %s SET (slot_name = NONE)" % quote_ident(SUBSCRIPTION)
                            )
                            tgt.execute("DROP SUBSCRIPTION %s" % quote_ident(SUBSCRIPTION))
                        drop_slot(src, slot)
        result["healthy"] = not problems
        return result
    finally:
        for conn in (src, tgt):
            if conn is not None:
                conn.close()


# --------------------------------------------------------------------------------------
# The modules that watch a replication: pg_replication_info (reads) and pg_replication_heartbeat (acts)
# --------------------------------------------------------------------------------------


def watch_argument_spec(acting=False):
    spec = dict(
        source=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        target=dict(type="dict", required=True, options=_pg.endpoint_options(False)),
        slot_name=dict(type="str"),
        wal_budget_bytes=dict(type="int"),
    )
    if acting:
        spec.update(
            heartbeat_timeout=dict(type="float", default=10),
            abort_on_budget=dict(type="bool", default=False),
        )
    return spec


def run_watch_module(module, acting=False):
    """Read the replication (and with acting, write the heartbeat and enforce the budget); exit the module."""
    if not _pg.HAS_PSYCOPG:
        module.fail_json(
            msg="psycopg 3 (Python package 'psycopg') is required on the node that runs this module",
            exception=_pg.PSYCOPG_IMPORT_ERROR,
        )
    params = module.params
    if params["wal_budget_bytes"] is not None and params["wal_budget_bytes"] <= 0:
        module.fail_json(msg="wal_budget_bytes must be more than 0")
    source = _pg.PgEndpoint.from_params(params["source"])
    target = _pg.PgEndpoint.from_params(params["target"], source.database)
    try:
        result = replication_info(
            source,
            target,
            slot=params["slot_name"] or forward_slot(source.database),
            heartbeat_timeout=params["heartbeat_timeout"] if acting else 0,
            wal_budget_bytes=params["wal_budget_bytes"],
            abort_on_budget=acting and params["abort_on_budget"],
            check_mode=module.check_mode,
            heartbeat=acting,
        )
    except (_pg.PgError, _pg.psycopg.Error) as error:
        module.fail_json(msg=_pg.redact(str(error), [source.password, target.password]))
    if not acting:
        for key in ("lag_seconds", "heartbeat_arrived", "aborted"):
            result.pop(key, None)
    module.exit_json(**result)
