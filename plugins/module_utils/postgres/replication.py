# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy-and-follow engine of a PostgreSQL migration (phases P1-P4), private.

prepare source -> prepare target -> snapshot copy -> post-data -> subscription, then watch.

Migration (here) runs the steps in order; each step lives in a file named for it:
copy_schema.py (source prepared, names claimed, roles, database, pre-data), copy_snapshot.py (the
slot, its exported snapshot and holder, resume), copy_chunks.py (the data, chunk by chunk),
copy_post_data.py (keys, indexes, constraints, foreign keys, triggers, views, ANALYZE), and
copy_common.py (names and bookkeeping they share). The subscription, removal and the watch
(pg_replication_info, pg_replication_heartbeat) stay here.

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

import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    replication_logins as _logins,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    schema_options as _schema_options,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import tenancy as _tenancy
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_chunks import (
    ChunkCopy,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_common import (
    ABORT_RATIO,
    APPLICATION_NAME,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_JOBS,
    DEFAULT_SLOT,
    HELPER_SCHEMA,
    PHASES,
    PUBLICATION,
    SUBSCRIPTION,
    SUBSCRIPTION_HERE,
    ReplicationError,
    StepLog,
    _all,
    _connect,
    _exists_database,
    _one,
    _set_state,
    _state,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_post_data import (
    PostData,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_schema import (
    SchemaTransfer,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_snapshot import (
    SlotSnapshot,
    release_holder,
    resume_decision,
    snapshot_importable,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.cutover import (
    forward_slot,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.replica_identity import (
    POLICY_REFUSE,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.side import Side
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.slots import drop_slot
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    literal as quote_literal,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import quote_ident

# --------------------------------------------------------------------------------------
# Pure parts (unit-tested)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# The snapshot holder
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


class Migration(SchemaTransfer, SlotSnapshot, ChunkCopy, PostData):
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
        replication_login=None,
        client_pgpass_dir=None,
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
        # Where pg_dump and psql find their password (a pgpass file made per command).
        self.client_pgpass_dir = client_pgpass_dir
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
        # The subscription replicates as a login of its own on the source, never as the migration's login.
        self.replication_login = dict(replication_login) if replication_login else None
        if self.replication_login:
            problem = _logins.validate(self.replication_login, "replication_login")
            if problem:
                raise ReplicationError(problem)
        self.secrets = []
        login_password = (self.replication_login or {}).get("password")
        for secret in (source.password, target.password, subscription_password, login_password):
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
            if self.replication_login:
                log.run("source: the subscription's own login", self.prepare_replication_login, src)
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

    def prepare_replication_login(self, src):
        done = _logins.ensure_replication_login(
            Side("source", self.source, src, self.secrets),
            self.replication_login["name"],
            self.replication_login["password"],
            option="replication_login",
            check_mode=self.check_mode,
        )
        self.result["replication_login"] = self.replication_login["name"]
        if self.check_mode:
            self.result["would"].extend(done)
        return bool(done), ", ".join(done) or None

    def _mark(self, key):
        tgt = self._target_conn()
        try:
            _set_state(tgt, key, "done")
        finally:
            tgt.close()

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
    replication_login=None,
):
    """Drop subscription (target), slot, publication, helper schema and the subscription's login
    (source), and the target's bookkeeping (or the whole target database). Returns (changed, steps)."""
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
            side = Side("source", source, src, [])
            if replication_login and _logins.is_replication_login(side, replication_login):
                if check_mode:
                    done.append("drop login %s" % replication_login)
                else:
                    outcome = _logins.drop_replication_login(side, replication_login)
                    done.append(
                        "drop login %s" % replication_login
                        if outcome == "dropped"
                        else "keep login %s (another database lets it connect)" % replication_login
                    )
        finally:
            src.close()
        actions.extend(done)
        return bool(done), ", ".join(done) or None

    log.run("target: subscription and copy state", target_side)
    log.run("source: holder, slot, publication, helper schema, login", source_side)
    return log.changed, log.steps, actions


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
