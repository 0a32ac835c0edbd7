# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fenced database cutover with proof, exact sequences and a reverse path, private.

The cutover moves the writing side of a logically replicated pair from the OLD server
(the one applications write to now) to the NEW one (the subscriber). Both directions are
the same algorithm with the roles swapped:

* forward: old = source (legacy VM), new = target; the path in use is the forward
  publication/slot on the source and the subscription on the target; the return path
  built during the cutover is the reverse one (publication and slot on the target,
  subscription on the source).
* reverse (rollback): old = target, new = source; the path in use is the reverse one;
  at the end the source's application roles are unfenced. Building the forward path
  again is optional (``reestablish_forward``).

Steps, each timed against a budget (seconds): prepare (helper tables, not in the window),
gate (lag in bytes and a marker round trip), fence (app roles NOLOGIN and read-only, grace,
terminate their sessions), marker (a row committed on old), drain (the marker is visible on
new: apply is in commit order, so every earlier commit is there), sequences (every sequence
read on the fenced old side, set on new in one transaction, owned ones guarded against
max(column)), return_path (publication, slot, subscription of the opposite direction),
drop_path (the path in use; the point of no return), unfence (roles on new that an earlier
fence left NOLOGIN). Until drop_path starts, any failure or exceeded budget undoes the
return path, restores the old side's role attributes exactly and keeps replication running.

Pure parts (names, budgets, SQL generation, guard, redaction) are unit-tested alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time
import uuid

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    helper_schema as _helper_schema,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    large_objects as _large_objects,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import slots as _slots
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    snapshot_holder as _snapshot_holder,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    write_hold as _write_hold,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.connection import (
    conninfo_passwords,
    redact_conninfo,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.replication_logins import (
    drop_replication_login,
    ensure_replication_login,
    is_replication_login,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.replication_logins import (
    validate as validate_login,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.side import Side
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import ident, qualified
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import literal as _literal

try:
    from psycopg import sql as _sql
except ImportError:  # reported through _pg.HAS_PSYCOPG
    _sql = None

APPLICATION_NAME = "odoo_migration_cutover"
# Key of the session advisory lock that keeps two cutovers of one database apart.
CUTOVER_LOCK = "odoo_migration:cutover"
# The holders of the fence instant's snapshots (pg_compare imports and then ends them).
SNAPSHOT_HOLDER_NAME = "odoo_migration_fence_snapshot"
SNAPSHOT_MAX_SECONDS = 6 * 3600
HELPER_SCHEMA = "odoo_migration"
FORWARD_PUBLICATION = "odoo_migration"
FORWARD_SUBSCRIPTION = "odoo_migration"
REVERSE_PUBLICATION = "odoo_migration_reverse"
REVERSE_SUBSCRIPTION = "odoo_migration_reverse"
FORWARD = "forward"
REVERSE = "reverse"
DIRECTIONS = (FORWARD, REVERSE)

STEPS = (
    "prepare",
    "gate",
    "fence",
    "marker",
    "drain",
    "large_objects",
    "sequences",
    "snapshots",
    "return_path",
    "drop_path",
    "unfence",
)
# The write-unavailability window: from the start of the fence to the end of the module.
WINDOW_STEPS = STEPS[STEPS.index("fence") :]
DEFAULT_BUDGETS = dict(
    prepare=120.0,
    gate=60.0,
    fence=10.0,
    marker=2.0,
    drain=10.0,
    large_objects=10.0,
    sequences=10.0,
    snapshots=10.0,
    return_path=15.0,
    drop_path=15.0,
    unfence=5.0,
    total=30.0,
)
BUDGET_KEYS = tuple(DEFAULT_BUDGETS)
DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LAG_SECONDS = 5.0
POLL_SECONDS = 0.02
# PostgreSQL's launcher restarts an apply worker that exited after wal_retrieve_retry_interval (5 s by
# default): a gate that finds none running waits this long for one before it refuses.
WORKER_SETTLE_SECONDS = 12.0
SEQUENCE_BATCH = 400

HELPER_DDL = _helper_schema.CUTOVER_DDL
HELPER_TABLES = ("marker", "heartbeat", "fenced_roles", "write_holds")
STAGES = ("cutover", "prepare")

# Roles a database uses: owners of its objects and large objects, grantees of its schemas,
# relations, large objects and database, and the direct members of those (a BI tool's login
# that reads through a group role). Predefined roles and the bootstrap superuser left out.
DATABASE_ROLES_SQL = (
    "WITH used AS ("
    " SELECT relowner AS r FROM pg_class UNION SELECT nspowner FROM pg_namespace"
    " UNION SELECT proowner FROM pg_proc UNION SELECT typowner FROM pg_type"
    " UNION SELECT datdba FROM pg_database WHERE datname = current_database()"
    " UNION SELECT (aclexplode(datacl)).grantee FROM pg_database"
    "  WHERE datname = current_database() AND datacl IS NOT NULL"
    " UNION SELECT (aclexplode(relacl)).grantee FROM pg_class WHERE relacl IS NOT NULL"
    " UNION SELECT (aclexplode(nspacl)).grantee FROM pg_namespace WHERE nspacl IS NOT NULL"
    " UNION SELECT lomowner FROM pg_largeobject_metadata"
    " UNION SELECT (aclexplode(lomacl)).grantee FROM pg_largeobject_metadata WHERE lomacl IS NOT NULL),"
    " members AS (SELECT r FROM used"
    "  UNION SELECT m.member FROM pg_auth_members m JOIN used u ON u.r = m.roleid)"
    " SELECT DISTINCT a.rolname::text AS name FROM members o JOIN pg_roles a ON a.oid = o.r"
    " WHERE a.rolname !~ '^pg_' AND a.oid <> 10 ORDER BY 1"
)
MATERIALIZED_VIEWS_SQL = (
    "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND c.relispopulated"
    " AND n.nspname !~ '^pg_' ORDER BY 1"
)


def refresh_materialized_views(conn, names, secrets):
    """REFRESH each view (names already quoted), each in its own transaction; (refreshed, failed)."""
    refreshed, failed = [], []
    for name in names:
        try:
            with conn.transaction():
                conn.execute("REFRESH MATERIALIZED VIEW %s" % name)
            refreshed.append(name)
        except _pg.psycopg.Error as error:
            failed.append(dict(name=name, error=_pg.error_text(error, secrets)))
    return refreshed, failed


class CutoverError(_pg.PgError):
    """The cutover failed; ``report`` carries what was done, timed, and what was undone."""

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report or {}


class BudgetExceeded(_pg.PgError):
    """A step (or the whole window) took longer than its budget."""


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------


def slot_suffix(database):
    """The database name as it appears in slot names: lower-case, [a-z0-9_] only."""
    return re.sub(r"[^a-z0-9_]", "_", str(database).lower())


def forward_slot(database):
    return ("odoo_migration_%s" % slot_suffix(database))[:63]


def reverse_slot(database):
    return ("odoo_migration_reverse_%s" % slot_suffix(database))[:63]


def paths(direction, database):
    """(path in use, return path) as dicts: which side publishes, names of pub, slot, sub."""
    forward = dict(
        name=FORWARD,
        publisher="source",
        subscriber="target",
        publication=FORWARD_PUBLICATION,
        slot=forward_slot(database),
        subscription=FORWARD_SUBSCRIPTION,
    )
    reverse = dict(
        name=REVERSE,
        publisher="target",
        subscriber="source",
        publication=REVERSE_PUBLICATION,
        slot=reverse_slot(database),
        subscription=REVERSE_SUBSCRIPTION,
    )
    if direction == FORWARD:
        return forward, reverse
    if direction == REVERSE:
        return reverse, forward
    raise ValueError("direction must be forward or reverse")


def sides(direction):
    """(old, new): the side written to now and the side that takes over."""
    return ("source", "target") if direction == FORWARD else ("target", "source")


# --------------------------------------------------------------------------------------
# Budgets and the step clock
# --------------------------------------------------------------------------------------


def merge_budgets(budgets=None):
    """Defaults overridden by the caller's budgets; unknown or non-positive values refused."""
    merged = dict(DEFAULT_BUDGETS)
    for key, value in (budgets or {}).items():
        if key not in DEFAULT_BUDGETS:
            raise ValueError("unknown budget %r (known: %s)" % (key, ", ".join(BUDGET_KEYS)))
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ValueError("budget %s must be a number of seconds" % key)
        if seconds <= 0:
            raise ValueError("budget %s must be more than 0 seconds" % key)
        merged[key] = seconds
    return merged


def validate_plan(budgets, grace_seconds):
    """Problems with budgets and grace taken together (a list of messages)."""
    problems = []
    if grace_seconds < 0:
        problems.append("grace_seconds must be 0 or more")
    if grace_seconds >= budgets["fence"]:
        problems.append(
            "grace_seconds (%s) must be less than the fence budget (%s): the grace is part of the fence"
            % (grace_seconds, budgets["fence"])
        )
    if grace_seconds >= budgets["total"]:
        problems.append(
            "grace_seconds (%s) must be less than the total budget (%s)" % (grace_seconds, budgets["total"])
        )
    return problems


def plan_steps(direction, budgets, reestablish_forward=False, export_snapshots=False):
    """The steps this run takes, in order, each with its budget and whether it is in the window."""
    plan = []
    for step in STEPS:
        if step == "return_path" and direction == REVERSE and not reestablish_forward:
            continue
        if step == "snapshots" and not export_snapshots:
            continue
        plan.append(dict(step=step, budget_seconds=budgets[step], in_window=step in WINDOW_STEPS))
    return plan


class StepClock:
    """Times steps against their budgets and the window (fence start to end) against 'total'."""

    def __init__(self, budgets, clock=time.monotonic):
        self.budgets = budgets
        self.clock = clock
        self.records = []
        self.window_started = None
        self.current = None
        self.current_started = None

    def start(self, step):
        now = self.clock()
        if step in WINDOW_STEPS and self.window_started is None:
            self.window_started = now
        self.current, self.current_started = step, now

    def deadline(self):
        """Monotonic time by which the current step (and the window) must end."""
        ends = [self.current_started + self.budgets[self.current]]
        if self.window_started is not None:
            ends.append(self.window_started + self.budgets["total"])
        return min(ends)

    def remaining(self):
        return self.deadline() - self.clock()

    def check(self):
        """Raise BudgetExceeded when the current step or the window is over its budget."""
        now = self.clock()
        step_elapsed = now - self.current_started
        if step_elapsed > self.budgets[self.current]:
            raise BudgetExceeded(
                "step %s took %.3f s, over its budget of %s s"
                % (self.current, step_elapsed, self.budgets[self.current])
            )
        if self.window_started is not None and now - self.window_started > self.budgets["total"]:
            raise BudgetExceeded(
                "the write-unavailability window reached %.3f s during step %s, over the total budget of %s s"
                % (now - self.window_started, self.current, self.budgets["total"])
            )

    def finish(self, ok=True, check=True):
        """Record the current step; raise BudgetExceeded (after recording) when over budget."""
        if self.current is None:
            return None
        now = self.clock()
        record = dict(
            step=self.current,
            seconds=round(now - self.current_started, 4),
            budget_seconds=self.budgets[self.current],
            ok=ok,
        )
        self.records.append(record)
        try:
            if check and ok:
                self.check()
        except BudgetExceeded:
            record["ok"] = False
            record["over_budget"] = True
            raise
        finally:
            self.current = None
        return record

    def window_seconds(self):
        if self.window_started is None:
            return 0.0
        return round(self.clock() - self.window_started, 4)


def wait_until(predicate, clock, poll=POLL_SECONDS, what="condition"):
    """Call predicate() until it returns a truthy value or the step's deadline passes."""
    while True:
        value = predicate()
        if value:
            return value
        if clock.remaining() <= 0:
            clock.check()
            raise BudgetExceeded("%s not reached within the budget of step %s" % (what, clock.current))
        time.sleep(min(poll, max(clock.remaining(), 0.001)))


# --------------------------------------------------------------------------------------
# Sequences: SQL generation and the guard
# --------------------------------------------------------------------------------------

SEQUENCE_LIST_SQL = """
SELECT n.nspname AS schema, c.relname AS name, s.seqincrement AS increment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_sequence s ON s.seqrelid = c.oid
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2
"""

OWNED_SEQUENCES_SQL = """
SELECT sn.nspname AS schema, s.relname AS name, tn.nspname AS table_schema, t.relname AS table_name,
       a.attname AS column_name
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p')
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
ORDER BY 1, 2
"""


def sequence_read_statements(sequences, batch=SEQUENCE_BATCH):
    """SELECTs that read (schema, name, last_value, is_called) of every sequence, a batch each."""
    statements = []
    for start in range(0, len(sequences), batch):
        parts = []
        for seq in sequences[start : start + batch]:
            parts.append(
                "SELECT %s::text AS schema, %s::text AS name, last_value, is_called FROM %s"
                % (_literal(seq["schema"]), _literal(seq["name"]), qualified(seq["schema"], seq["name"]))
            )
        statements.append(" UNION ALL ".join(parts))
    return statements


SETVAL_SQL = (
    "SELECT count(setval(format('%%I.%%I', s, n)::regclass, v, c)) AS set"
    " FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::boolean[]) AS t(s, n, v, c)"
)


def setval_statement(values):
    """One statement (sql, params) that sets every sequence exactly: setval(seq, last_value, is_called)."""
    return (
        SETVAL_SQL,
        (
            [value["schema"] for value in values],
            [value["name"] for value in values],
            [int(value["last_value"]) for value in values],
            [bool(value["is_called"]) for value in values],
        ),
    )


def guard_statements(owned, batch=SEQUENCE_BATCH):
    """SELECTs returning (i, max) of every owned sequence's column, i indexing ``owned``."""
    statements = []
    for start in range(0, len(owned), batch):
        parts = []
        for index in range(start, min(start + batch, len(owned))):
            row = owned[index]
            parts.append(
                "SELECT %d AS i, max(%s)::numeric AS max FROM %s"
                % (index, ident(row["column_name"]), qualified(row["table_schema"], row["table_name"]))
            )
        statements.append(" UNION ALL ".join(parts))
    return statements


def sequence_position(last_value, is_called, increment=1):
    """The last value handed out (or the one before the next), as nextval would see it."""
    return int(last_value) if is_called else int(last_value) - int(increment)


def guard_violations(owned, maxima, values):
    """Owned sequences whose next value would collide with a value already in their column.

    owned: rows of OWNED_SEQUENCES_SQL; maxima: {i: max or None}; values: {(schema, name):
    {last_value, is_called, increment}}. Ascending sequences must have position >= max(col),
    descending ones position <= min... (we only read max, so descending ones are skipped).
    """
    violations = []
    for index, row in enumerate(owned):
        maximum = maxima.get(index)
        if maximum is None:
            continue
        value = values.get((row["schema"], row["name"]))
        if value is None:
            violations.append(
                dict(
                    sequence=qualified(row["schema"], row["name"]),
                    problem="not copied",
                    column_max=int(maximum),
                )
            )
            continue
        increment = int(value.get("increment") or 1)
        if increment < 0:
            continue
        position = sequence_position(value["last_value"], value["is_called"], increment)
        if position < maximum:
            violations.append(
                dict(
                    sequence=qualified(row["schema"], row["name"]),
                    column="%s.%s"
                    % (qualified(row["table_schema"], row["table_name"]), ident(row["column_name"])),
                    position=position,
                    column_max=int(maximum),
                    problem="behind its column",
                )
            )
    return violations


# --------------------------------------------------------------------------------------
# Server-side helpers (need an open psycopg connection)
# --------------------------------------------------------------------------------------


def open_side(name, endpoint, secrets):
    conn = _pg.connect(endpoint, application_name=APPLICATION_NAME)
    side = Side(name, endpoint, conn, secrets)
    row = side.one(
        "identify",
        "SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid,"
        " current_setting('server_version_num')::int AS version_num,"
        " current_setting('wal_level') AS wal_level",
    )
    side.sysid = row["sysid"]
    side.version_num = row["version_num"]
    side.wal_level = row["wal_level"]
    return side


def helper_missing(side):
    """Helper tables that do not exist on this side."""
    rows = side.run(
        "looking for the helper tables",
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r'",
        (HELPER_SCHEMA,),
    )
    present = set(row["relname"] for row in rows)
    return [table for table in HELPER_TABLES if table not in present]


def ensure_helper(side):
    """Create the helper schema and tables where missing; return True when something was created."""
    if not helper_missing(side):
        return False
    with side.conn.transaction():
        for statement in HELPER_DDL:
            side.run("creating the helper schema", statement)
    return True


def subscription_state(side, subscription):
    """The subscription on this side: enabled, worker pid, tables not ready, slot; None if absent."""
    row = side.one(
        "reading subscription %s" % subscription,
        "SELECT s.oid::bigint AS oid, s.subenabled AS enabled, s.subslotname AS slot,"
        " (SELECT pid FROM pg_stat_subscription st"
        "   WHERE st.subid = s.oid AND st.relid IS NULL LIMIT 1) AS pid,"
        " (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r')"
        "::int AS not_ready"
        " FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database()"
        " WHERE s.subname = %s",
        (subscription,),
    )
    return row


def subscription_has_helper(side, subscription):
    row = side.one(
        "reading the tables of subscription %s" % subscription,
        "SELECT count(*)::int AS n FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid"
        " JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE s.subname = %s AND n.nspname = %s AND c.relname = ANY(%s)"
        " AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (subscription, HELPER_SCHEMA, list(HELPER_TABLES)),
    )
    return row["n"] == len(HELPER_TABLES)


def ensure_publication_has_helper(side, publication):
    """A publication that is not FOR ALL TABLES gets the helper tables added."""
    row = side.one(
        "reading publication %s" % publication,
        "SELECT puballtables FROM pg_publication WHERE pubname = %s",
        (publication,),
    )
    if row is None or row["puballtables"]:
        return False
    listed = side.run(
        "reading publication %s" % publication,
        "SELECT tablename FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s",
        (publication, HELPER_SCHEMA),
    )
    missing = [t for t in HELPER_TABLES if t not in set(r["tablename"] for r in listed)]
    for table in missing:
        side.run(
            "adding the helper tables to publication %s" % publication,
            _sql.SQL("ALTER PUBLICATION {} ADD TABLE {}.{}").format(
                _sql.Identifier(publication), _sql.Identifier(HELPER_SCHEMA), _sql.Identifier(table)
            ),
        )
    return bool(missing)


def slot_state(side, slot):
    return side.one(
        "reading slot %s" % slot,
        "SELECT slot_name, active, active_pid, wal_status,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag_bytes"
        " FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )


def app_roles_state(side, roles):
    rows = side.run(
        "reading the application roles",
        "SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolreplication,"
        " (SELECT substr(c, length('default_transaction_read_only=') + 1)"
        "    FROM pg_db_role_setting s, unnest(s.setconfig) c"
        "   WHERE s.setrole = r.oid AND s.setdatabase = 0"
        "     AND c LIKE 'default_transaction_read_only=%%') AS read_only,"
        " (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname)::int AS sessions"
        " FROM pg_roles r WHERE r.rolname = ANY(%s) ORDER BY 1",
        (list(roles),),
    )
    return rows


def fence_rows(side, fenced_on=None):
    if helper_missing(side):
        return []
    return side.run(
        "reading odoo_migration.fenced_roles",
        "SELECT fenced_on, role_name, rolcanlogin, read_only_setting FROM odoo_migration.fenced_roles"
        " WHERE fenced_on = %s ORDER BY role_name",
        (fenced_on or side.sysid,),
    )


# A role belongs to the whole cluster, but a fence is taken per database: two databases of one
# VM share Odoo's role. The role's comment (cluster-wide) records its attributes before the first
# fence and which databases hold the fence; the role is restored only when the last one lets go,
# so rolling back one database never lets Odoo write to another that lives on the other side.
FENCE_COMMENT_PREFIX = "odoo-migration-fence:"


def parse_fence_comment(comment):
    """The fence record kept in a role's comment, or None when the comment is the operator's."""
    if not comment or not comment.startswith(FENCE_COMMENT_PREFIX):
        return None
    return json.loads(comment[len(FENCE_COMMENT_PREFIX) :])


def fence_comment(record):
    return FENCE_COMMENT_PREFIX + json.dumps(record, sort_keys=True)


def _role_now(side, role):
    return side.one(
        "reading role %s" % role,
        "SELECT r.rolcanlogin, shobj_description(r.oid, 'pg_authid') AS comment,"
        " (SELECT substr(c, length('default_transaction_read_only=') + 1)"
        "    FROM pg_db_role_setting s, unnest(s.setconfig) c"
        "   WHERE s.setrole = r.oid AND s.setdatabase = 0"
        "     AND c LIKE 'default_transaction_read_only=%%') AS read_only"
        " FROM pg_roles r WHERE r.rolname = %s",
        (role,),
    )


def _set_comment(side, role, text):
    side.run(
        "recording the fence of role %s" % role,
        _sql.SQL("COMMENT ON ROLE {} IS {}").format(
            _sql.Identifier(role), _sql.Literal(text) if text is not None else _sql.SQL("NULL")
        ),
    )


def fence_roles(side, roles):
    """Remember each role's attributes (once), then NOLOGIN and default_transaction_read_only=on."""
    database = side.one("reading the database", "SELECT current_database() AS name")["name"]
    with side.conn.transaction():
        for role in roles:
            now = _role_now(side, role)
            if now is None:
                continue
            record = parse_fence_comment(now["comment"])
            if record is None:
                record = dict(
                    login=now["rolcanlogin"], read_only=now["read_only"], comment=now["comment"], holders=[]
                )
            if database not in record["holders"]:
                record["holders"] = sorted(record["holders"] + [database])
            _set_comment(side, role, fence_comment(record))
            side.run(
                "remembering role %s" % role,
                "INSERT INTO odoo_migration.fenced_roles"
                " (fenced_on, role_name, rolcanlogin, read_only_setting) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (fenced_on, role_name) DO NOTHING",
                (side.sysid, role, record["login"], record["read_only"]),
            )
            side.run(
                "fencing role %s" % role, _sql.SQL("ALTER ROLE {} NOLOGIN").format(_sql.Identifier(role))
            )
            side.run(
                "fencing role %s" % role,
                _sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                    _sql.Identifier(role)
                ),
            )


def _restore_role(side, role, login, read_only):
    ident = _sql.Identifier(role)
    side.run(
        "restoring role %s" % role,
        _sql.SQL("ALTER ROLE {} " + ("LOGIN" if login else "NOLOGIN")).format(ident),
    )
    if read_only is None:
        side.run(
            "restoring role %s" % role,
            _sql.SQL("ALTER ROLE {} RESET default_transaction_read_only").format(ident),
        )
    else:
        side.run(
            "restoring role %s" % role,
            _sql.SQL("ALTER ROLE {} SET default_transaction_read_only = {}").format(
                ident, _sql.Literal(read_only)
            ),
        )


def unfence_roles(side):
    """Let go of this database's fence on each role; restore a role exactly once no database holds it.

    Returns the role names this database let go of.
    """
    rows = fence_rows(side)
    if not rows:
        return []
    database = side.one("reading the database", "SELECT current_database() AS name")["name"]
    with side.conn.transaction():
        for row in rows:
            now = _role_now(side, row["role_name"])
            if now is not None:
                record = parse_fence_comment(now["comment"])
                if record is None:
                    # Fenced before fences were recorded on the role: this database's row is the truth.
                    _restore_role(side, row["role_name"], row["rolcanlogin"], row["read_only_setting"])
                else:
                    record["holders"] = [name for name in record["holders"] if name != database]
                    if record["holders"]:
                        _set_comment(side, row["role_name"], fence_comment(record))
                    else:
                        _restore_role(side, row["role_name"], record["login"], record["read_only"])
                        _set_comment(side, row["role_name"], record["comment"])
            side.run(
                "forgetting role %s" % row["role_name"],
                "DELETE FROM odoo_migration.fenced_roles WHERE fenced_on = %s AND role_name = %s",
                (side.sysid, row["role_name"]),
            )
    return [row["role_name"] for row in rows]


def role_sessions(side, roles):
    return side.run(
        "listing application sessions",
        "SELECT pid, usename, datname, state, xact_start IS NOT NULL AS in_transaction FROM pg_stat_activity"
        " WHERE usename = ANY(%s) AND pid <> pg_backend_pid()",
        (list(roles),),
    )


def terminate_sessions(side, roles):
    rows = side.run(
        "terminating application sessions",
        "SELECT pid, pg_terminate_backend(pid) AS terminated FROM pg_stat_activity"
        " WHERE usename = ANY(%s) AND pid <> pg_backend_pid()",
        (list(roles),),
    )
    return len(rows)


def read_sequences(side):
    """Every sequence of the database with last_value, is_called and increment."""
    listed = side.run("listing sequences", SEQUENCE_LIST_SQL)
    increments = dict(((row["schema"], row["name"]), row["increment"]) for row in listed)
    values = []
    for statement in sequence_read_statements(listed):
        for row in side.run("reading sequences", statement):
            row["increment"] = increments[(row["schema"], row["name"])]
            values.append(row)
    return values


def owned_sequences(side):
    return side.run("listing owned sequences", OWNED_SEQUENCES_SQL)


def create_path(publisher, subscriber, path, conninfo):
    """Publication and slot on the publisher, subscription (copy_data=false, origin=none) on the subscriber.

    Returns what was created. Idempotent: existing pieces are kept.
    """
    created = []
    if not publisher.one(
        "reading publications", "SELECT 1 AS x FROM pg_publication WHERE pubname = %s", (path["publication"],)
    ):
        publisher.run(
            "creating publication %s" % path["publication"],
            _sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(_sql.Identifier(path["publication"])),
        )
        created.append("publication")
    if slot_state(publisher, path["slot"]) is None:
        publisher.run(
            "creating slot %s" % path["slot"],
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')",
            (path["slot"],),
        )
        created.append("slot")
    if subscription_state(subscriber, path["subscription"]) is None:
        subscriber.run(
            "creating subscription %s" % path["subscription"],
            _sql.SQL(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}"
                " WITH (create_slot = false, slot_name = {}, copy_data = false,"
                " origin = none, enabled = true)"
            ).format(
                _sql.Identifier(path["subscription"]),
                _sql.Literal(conninfo),
                _sql.Identifier(path["publication"]),
                _sql.Literal(path["slot"]),
            ),
            secret=True,
        )
        created.append("subscription")
    return created


def drop_subscription(subscriber, publisher, subscription, slot, clock=None, timeout=10.0):
    """Drop a subscription without letting it drop its remote slot, then drop the slot ourselves.

    DROP SUBSCRIPTION normally connects to the publisher and drops the slot there; that
    needs the subscriber to reach the publisher and fails the whole statement otherwise.
    Here: DISABLE, wait for the walsender to leave the slot, SET (slot_name = NONE), DROP,
    then pg_drop_replication_slot() over our own connection to the publisher, plus any
    table-sync slots (pg_<suboid>_sync_*) the subscription left. Returns what was dropped.
    """
    dropped = []
    state = subscription_state(subscriber, subscription)
    name = _sql.Identifier(subscription)
    if state is not None:
        if state["enabled"]:
            subscriber.run(
                "disabling subscription %s" % subscription,
                _sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(name),
            )
        if state["slot"] is not None:
            subscriber.run(
                "detaching subscription %s from its slot" % subscription,
                _sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(name),
            )
        subscriber.run(
            "dropping subscription %s" % subscription, _sql.SQL("DROP SUBSCRIPTION {}").format(name)
        )
        dropped.append("subscription")
    if publisher is None:
        return dropped
    patterns = [slot]
    if state is not None:
        patterns.append("pg_%d_sync_%%" % state["oid"])
    ends = time.monotonic() + timeout
    while True:
        rows = publisher.run(
            "reading slots",
            "SELECT slot_name, active FROM pg_replication_slots WHERE slot_name = %s OR slot_name LIKE %s",
            (patterns[0], patterns[-1] if len(patterns) > 1 else patterns[0]),
        )
        if not any(row["active"] for row in rows):
            break
        if (clock is not None and clock.remaining() <= 0) or time.monotonic() > ends:
            raise _pg.PgError(
                "slot %s on the %s is still in use after the subscription was disabled"
                % (slot, publisher.describe())
            )
        time.sleep(POLL_SECONDS)
    for row in rows:
        publisher.run(
            "dropping slot %s" % row["slot_name"], "SELECT pg_drop_replication_slot(%s)", (row["slot_name"],)
        )
        dropped.append("slot %s" % row["slot_name"])
    return dropped


def drop_publication(side, publication):
    if side.one(
        "reading publications", "SELECT 1 AS x FROM pg_publication WHERE pubname = %s", (publication,)
    ):
        side.run(
            "dropping publication %s" % publication,
            _sql.SQL("DROP PUBLICATION {}").format(_sql.Identifier(publication)),
        )
        return True
    return False


def drop_slot(side, slot):
    """Drop a slot on this side (its walsender ended first); False when it did not exist."""
    try:
        return _slots.drop_slot(side.conn, slot)
    except _pg.psycopg.Error as error:
        raise _pg.PgError(
            "dropping slot %s failed on the %s: %s"
            % (slot, side.describe(), _pg.error_text(error, side.secrets))
        ) from None


def tables_without_identity(side):
    """Tables whose UPDATE/DELETE would fail once they are in a FOR ALL TABLES publication."""
    rows = side.run(
        "reading replica identities",
        "SELECT n.nspname AS schema, c.relname AS name"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%%'"
        " AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS"
        "   (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))"
        "  OR (c.relreplident = 'i' AND NOT EXISTS"
        "   (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))"
        " ORDER BY 1, 2",
    )
    return ["%s.%s" % (ident(r["schema"]), ident(r["name"])) for r in rows]


# --------------------------------------------------------------------------------------
# The cutover
# --------------------------------------------------------------------------------------


class Cutover:
    """One run of the cutover in one direction. run() returns the report or raises CutoverError."""

    def __init__(
        self,
        source,
        target,
        application_roles,
        direction=FORWARD,
        source_conninfo_from_target=None,
        target_conninfo_from_source=None,
        grace_seconds=2.0,
        budgets=None,
        max_lag_bytes=DEFAULT_MAX_LAG_BYTES,
        max_lag_seconds=DEFAULT_MAX_LAG_SECONDS,
        reestablish_forward=False,
        check_mode=False,
        role_map=None,
        export_snapshots=False,
        rehearse=False,
        stage="cutover",
        write_hold_exceptions=None,
        return_login=None,
    ):
        if direction not in DIRECTIONS:
            raise _pg.PgError("direction must be forward or reverse")
        self.endpoints = dict(source=source, target=target)
        self.roles = list(dict.fromkeys(application_roles or []))
        # Source role name -> target role name (instances sharing a target each have their own).
        self.role_map = dict(role_map or {})
        self.direction = direction
        self.conninfo = dict(source=source_conninfo_from_target, target=target_conninfo_from_source)
        self.grace_seconds = float(grace_seconds)
        try:
            self.budgets = merge_budgets(budgets)
        except ValueError as error:
            raise _pg.PgError(str(error))
        problems = validate_plan(self.budgets, self.grace_seconds)
        if problems:
            raise _pg.PgError("; ".join(problems))
        self.max_lag_bytes = int(max_lag_bytes)
        self.max_lag_seconds = float(max_lag_seconds)
        self.reestablish_forward = bool(reestablish_forward)
        self.export_snapshots = bool(export_snapshots)
        if stage not in STAGES:
            raise _pg.PgError("stage must be one of %s" % ", ".join(STAGES))
        if stage == "prepare" and direction != FORWARD:
            raise _pg.PgError("stage=prepare readies the target of a forward cutover; use direction=forward")
        # prepare: everything before the maintenance page (gates, helpers, pre-syncs, the write hold).
        self.stage = stage
        try:
            self.write_hold_exceptions = _write_hold.parse_exceptions(write_hold_exceptions)
        except ValueError as error:
            raise _pg.PgError(str(error))
        # A rehearsal changes nothing either: it reads, and times what it reads.
        self.rehearse = bool(rehearse)
        self.check_mode = check_mode or self.rehearse
        self.database = source.database
        self.path, self.return_path = paths(direction, self.database)
        self.old_name, self.new_name = sides(direction)
        target_roles = [self.role_map.get(role, role) for role in self.roles]
        self.roles_on = dict(source=self.roles, target=target_roles)
        # The old side's role names -> the new side's.
        self.renamed = (
            dict((role, name) for role, name in self.role_map.items() if role != name)
            if direction == FORWARD
            else dict((name, role) for role, name in self.role_map.items() if role != name)
        )
        self.build_return_path = direction == FORWARD or self.reestablish_forward
        # The return path replicates as a login of its own on its publisher, never as its superuser.
        self.return_login = dict(return_login) if return_login else None
        if self.return_login:
            problem = validate_login(self.return_login, "return_login")
            if problem:
                raise _pg.PgError(problem)
            publisher = self.return_path["publisher"]
            if self.conninfo.get(publisher):
                self.conninfo[publisher] = _pg.conninfo_with_login(
                    self.conninfo[publisher], self.return_login["name"], self.return_login["password"]
                )
        self.secrets = [s for s in (source.password, target.password) if s]
        if self.return_login:
            self.secrets.append(self.return_login["password"])
        for conninfo in self.conninfo.values():
            self.secrets.extend(conninfo_passwords(conninfo))
        self.sides = {}
        self.clock = StepClock(self.budgets)
        self.report = dict(
            direction=direction,
            database=self.database,
            application_roles=self.roles,
            target_application_roles=target_roles,
            plan=plan_steps(direction, self.budgets, self.reestablish_forward, self.export_snapshots),
            budgets=self.budgets,
            grace_seconds=self.grace_seconds,
            path=dict(self.path),
            return_path=dict(self.return_path) if self.build_return_path else None,
            return_path_conninfo=redact_conninfo(self.conninfo[self.return_path["publisher"]])
            if self.build_return_path
            else None,
            gates={},
            steps=self.clock.records,
            write_unavailable_seconds=0.0,
            fence=None,
            marker=None,
            sequences=None,
            point_of_no_return_passed=False,
            aborted=False,
            abort_reason=None,
            undone=[],
            state=None,
            changed=False,
        )

    # -- helpers --------------------------------------------------------------------

    def side(self, name):
        return self.sides[name]

    @property
    def old(self):
        return self.sides[self.old_name]

    @property
    def new(self):
        return self.sides[self.new_name]

    def _redact(self, text):
        return _pg.redact(text, self.secrets)

    def close(self):
        for side in self.sides.values():
            try:
                side.conn.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass

    # -- run ------------------------------------------------------------------------

    def run(self):
        try:
            for name in ("source", "target"):
                self.sides[name] = open_side(name, self.endpoints[name], self.secrets)
            self.report["servers"] = dict(
                (name, dict(version_num=side.version_num, wal_level=side.wal_level))
                for name, side in self.sides.items()
            )
            state = self.current_state()
            self.report["state"] = state
            if state == "done":
                return self.report
            if not self.check_mode:
                self.lock_database()
            if self.stage == "prepare":
                self.prepare_before_window()
                return self.report
            if self.check_mode:
                self.check_gates(probe=False)
                if self.rehearse:
                    self.report["rehearsal"] = self.rehearsal()
                else:
                    # What a real run would do, as community.postgresql's modules predict in check mode.
                    self.report["changed"] = True
                    self.report["would"] = self.planned_actions()
                return self.report
            self.execute()
            return self.report
        finally:
            self.close()

    def lock_database(self):
        """One cutover of a database at a time: a session lock on both servers, held until the end."""
        for side in (self.old, self.new):
            row = side.one(
                "taking the cutover lock",
                "SELECT pg_try_advisory_lock(hashtext(%s)) AS taken",
                (CUTOVER_LOCK,),
            )
            if not row["taken"]:
                holder = side.one(
                    "finding the cutover lock's holder",
                    "SELECT a.pid, a.application_name, a.backend_start::text AS since"
                    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " AND l.objid = hashtext(%s)::oid LIMIT 1",
                    (CUTOVER_LOCK,),
                )
                raise CutoverError(
                    "another cutover of database %s is running on the %s (%s); wait for it to end,"
                    " or end that session, before running this one"
                    % (
                        side.one("reading the database", "SELECT current_database() AS name")["name"],
                        side.describe(),
                        "backend pid %(pid)s, %(application_name)s, since %(since)s" % holder
                        if holder
                        else "its session just ended: retry",
                    ),
                    self.report,
                )

    def planned_actions(self):
        """The steps a real run would take, in words, for check mode."""
        old, new = self.old.describe(), self.new.describe()
        roles_old = ", ".join(self.roles_on[self.old_name]) or "(none)"
        roles_new = ", ".join(self.roles_on[self.new_name]) or "(none)"
        actions = [
            "fence %s on the %s (no login, read-only, sessions ended)" % (roles_old, old),
            "commit the marker on the %s and wait for it on the %s" % (old, new),
            "copy large objects and sequences to the %s" % new,
        ]
        if self.export_snapshots:
            actions.append("export a snapshot on each side")
        if self.build_return_path:
            actions.append(
                "create the return path %s (publication on the %s, subscription on the %s)"
                % (
                    self.return_path["subscription"],
                    self.side(self.return_path["publisher"]).describe(),
                    self.side(self.return_path["subscriber"]).describe(),
                )
            )
        actions += [
            "drop subscription %s and slot %s" % (self.path["subscription"], self.path["slot"]),
            "unfence %s on the %s and release any write hold there" % (roles_new, new),
        ]
        return actions

    def current_state(self):
        """'ready' (the path in use exists), 'done' (already switched) or raise (nothing to cut over)."""
        in_use = subscription_state(self.side(self.path["subscriber"]), self.path["subscription"])
        if in_use is not None:
            return "ready"
        if self.direction == FORWARD:
            back = subscription_state(
                self.side(self.return_path["subscriber"]), self.return_path["subscription"]
            )
            if back is not None:
                return "done"
        elif not fence_rows(self.new):
            return "done"
        raise CutoverError(
            "nothing to cut over: subscription %s does not exist on the %s"
            % (self.path["subscription"], self.side(self.path["subscriber"]).describe()),
            self.report,
        )

    def check_gates(self, probe=True):
        """Gate values; raise CutoverError when one is not met. probe=False reads only (check mode)."""
        gates = self.report["gates"]
        problems = []
        old, new = self.old, self.new
        publisher = self.side(self.path["publisher"])
        subscriber = self.side(self.path["subscriber"])
        if self.build_return_path:
            return_publisher = self.side(self.return_path["publisher"])
            return_subscriber = self.side(self.return_path["subscriber"])
            if return_publisher.wal_level != "logical":
                problems.append(
                    "wal_level is %s on the %s, the return path needs logical"
                    % (return_publisher.wal_level, return_publisher.describe())
                )
            if return_subscriber.version_num < 160000:
                problems.append(
                    "the %s runs PostgreSQL %s; origin = none needs 16 or later"
                    % (return_subscriber.describe(), return_subscriber.version_num)
                )
            if not self.conninfo[self.return_path["publisher"]]:
                problems.append(
                    "%s_conninfo_from_%s is required: the return path's subscription on the %s"
                    " connects with it"
                    % (
                        self.return_path["publisher"],
                        self.return_path["subscriber"],
                        self.return_path["subscriber"],
                    )
                )
            missing_identity = tables_without_identity(return_publisher)
            gates["tables_without_replica_identity"] = missing_identity
            if missing_identity:
                problems.append(
                    "tables without a primary key or replica identity on the %s"
                    " (UPDATE/DELETE would fail once published): %s"
                    % (return_publisher.describe(), ", ".join(missing_identity[:10]))
                )
        sub = subscription_state(subscriber, self.path["subscription"])
        if probe and sub and sub["enabled"] and not sub["pid"]:
            sub = self.wait_for_worker(subscriber) or sub
        gates["subscription_enabled"] = bool(sub and sub["enabled"])
        gates["subscription_worker_running"] = bool(sub and sub["pid"])
        gates["tables_not_ready"] = sub["not_ready"] if sub else None
        if not (sub and sub["enabled"] and sub["pid"]):
            problems.append(
                "subscription %s on the %s is not running"
                % (self.path["subscription"], subscriber.describe())
            )
        elif sub["not_ready"]:
            problems.append(
                "%d tables of subscription %s are still copying"
                % (sub["not_ready"], self.path["subscription"])
            )
        slot = slot_state(publisher, self.path["slot"])
        gates["lag_bytes"] = slot["lag_bytes"] if slot else None
        gates["max_lag_bytes"] = self.max_lag_bytes
        if slot is None:
            problems.append("slot %s does not exist on the %s" % (self.path["slot"], publisher.describe()))
        elif slot["lag_bytes"] is not None and slot["lag_bytes"] > self.max_lag_bytes:
            problems.append("lag %d bytes is over max_lag_bytes %d" % (slot["lag_bytes"], self.max_lag_bytes))
        old_roles = self.roles_on[self.old_name]
        roles = app_roles_state(old, old_roles)
        found = set(row["rolname"] for row in roles)
        gates["application_roles"] = [
            dict(
                role=row["rolname"],
                can_login=row["rolcanlogin"],
                read_only=row["read_only"],
                sessions=row["sessions"],
            )
            for row in roles
        ]
        missing = [role for role in old_roles if role not in found]
        if not self.roles:
            problems.append("application_roles is empty: nothing would be fenced")
        if missing:
            problems.append("application roles missing on the %s: %s" % (old.describe(), ", ".join(missing)))
        unsafe = [row["rolname"] for row in roles if row["rolsuper"] or row["rolreplication"]]
        unsafe += [role for role in old_roles if role in (old.endpoint.user, new.endpoint.user)]
        if unsafe:
            problems.append(
                "roles that cannot be fenced (superuser, replication, or the migration's own login): %s"
                % ", ".join(sorted(set(unsafe)))
            )
        gates["marker_round_trip_seconds"] = None
        gates["max_lag_seconds"] = self.max_lag_seconds
        if probe and not problems:
            token = "probe:%s" % uuid.uuid4()
            started = time.monotonic()
            old.run(
                "writing a probe marker", "INSERT INTO odoo_migration.marker (token) VALUES (%s)", (token,)
            )
            deadline = started + self.max_lag_seconds
            seen = False
            while time.monotonic() < min(deadline, self.clock.deadline()):
                if new.one(
                    "looking for the probe marker",
                    "SELECT 1 AS x FROM odoo_migration.marker WHERE token = %s",
                    (token,),
                ):
                    seen = True
                    break
                time.sleep(POLL_SECONDS)
            elapsed = round(time.monotonic() - started, 4)
            gates["marker_round_trip_seconds"] = elapsed if seen else None
            if not seen:
                problems.append(
                    "a probe marker did not reach the %s within %s s" % (new.describe(), self.max_lag_seconds)
                )
        gates["ok"] = not problems
        gates["problems"] = problems
        if problems:
            raise CutoverError("cutover gate not met: " + "; ".join(problems), self.report)

    def rehearsal(self):
        """Time, without changing anything, what each in-window step does first (its reads, a snapshot
        exported and released); the sum predicts the write unavailability. Steps that only write
        (return path, drop of the forward path, unfence) cannot be timed here and are listed."""
        old, new = self.old, self.new
        publisher = self.side(self.path["publisher"])
        old_roles = self.roles_on[self.old_name]
        steps = []

        def timed(step, what, action):
            """action() returns the seconds it could not spend here (the lag a marker waits for), or None."""
            started = time.monotonic()
            waited = action() or 0.0
            steps.append(dict(step=step, what=what, seconds=round(time.monotonic() - started + waited, 4)))

        def fence():
            for role in old_roles:  # the fence reads, alters and comments each role
                _role_now(old, role)
                _role_now(old, role)
            role_sessions(old, old_roles)

        def marker():
            old.one("a marker's round trip", "SELECT 1 AS x")
            row = publisher.one(
                "reading the replication lag",
                "SELECT COALESCE(max(EXTRACT(epoch FROM replay_lag)), 0)::float8 AS lag"
                " FROM pg_stat_replication WHERE application_name = %s",
                (self.path["subscription"],),
            )
            return float(row["lag"] or 0.0)

        def drain():
            subscription_state(self.side(self.path["subscriber"]), self.path["subscription"])

        def large_objects():
            old.one("counting large objects", "SELECT count(*) AS n FROM pg_largeobject_metadata")

        def sequences():
            read_sequences(old)
            read_sequences(new)  # setting them on the new side costs about as much as reading them

        def snapshots():
            held = _snapshot_holder.start(
                [self.endpoints["source"], self.endpoints["target"]], SNAPSHOT_HOLDER_NAME, max_seconds=60
            )
            for index, name in enumerate(("source", "target")):
                pid = held[index]["backend_pid"]
                _snapshot_holder.release(self.side(name).conn, pid, SNAPSHOT_HOLDER_NAME)

        timed("fence", "read each application role and its sessions", fence)
        timed("marker", "one round trip and the replication lag a marker waits for", marker)
        timed("drain", "read the subscription's state", drain)
        timed("large_objects", "count the large objects", large_objects)
        timed("sequences", "read every sequence on both sides", sequences)
        if self.export_snapshots:
            timed("snapshots", "export and release a snapshot on each side", snapshots)
        timed_steps = set(record["step"] for record in steps)
        return dict(
            steps=steps,
            untimed=[
                record["step"]
                for record in self.report["plan"]
                if record["in_window"] and record["step"] not in timed_steps
            ],
            predicted_write_unavailable_seconds=round(sum(record["seconds"] for record in steps), 3),
        )

    def wait_for_worker(self, subscriber):
        """The subscription's state once an apply worker runs, or None after WORKER_SETTLE_SECONDS."""
        deadline = time.monotonic() + min(WORKER_SETTLE_SECONDS, max(self.clock.remaining(), 0))
        while time.monotonic() < deadline:
            time.sleep(0.2)
            sub = subscription_state(subscriber, self.path["subscription"])
            if sub and sub["pid"]:
                return sub
        return None

    def prepare(self):
        """Helper tables on both sides (subscriber first), publication and subscription know them."""
        created = []
        subscriber = self.side(self.path["subscriber"])
        publisher = self.side(self.path["publisher"])
        for side in (subscriber, publisher):
            if ensure_helper(side):
                created.append("helper schema on the %s" % side.name)
        if ensure_publication_has_helper(publisher, self.path["publication"]):
            created.append("helper tables in publication %s" % self.path["publication"])
        if not subscription_has_helper(subscriber, self.path["subscription"]):
            subscriber.run(
                "refreshing subscription %s" % self.path["subscription"],
                _sql.SQL("ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = false)").format(
                    _sql.Identifier(self.path["subscription"])
                ),
            )
            created.append("helper tables in subscription %s" % self.path["subscription"])
        # Large objects changed since the copy, brought over while users still work, so the
        # fence only carries the last changes.
        if self.return_login and self.build_return_path:
            created += ensure_replication_login(
                self.side(self.return_path["publisher"]),
                self.return_login["name"],
                self.return_login["password"],
            )
            self.report["return_login"] = self.return_login["name"]
        presync = self.copy_large_objects("before the fence")
        if presync["copied"] or presync["removed"]:
            created.append("large objects pre-synced (%(copied)d copied, %(removed)d removed)" % presync)
        if created:
            self.report["changed"] = True
        self.report["prepared"] = created

    def prepare_before_window(self):
        """Before the maintenance page: gates, helpers, large objects and sequences pre-synced, and the
        new side's application roles kept from writing, so their application can start against it."""
        new_roles = self.roles_on[self.new_name]
        if self.check_mode:
            self.check_gates(probe=False)
            missing = (
                helper_missing(self.new) or helper_missing(self.old) or self.run_as_subscription_owner(False)
            )
            to_hold = _write_hold.summary(
                _write_hold.held_privileges(self.new, new_roles, self.write_hold_exceptions)
            )
            behind = self.sequences_behind()
            self.report.update(
                prepared=["helper tables"] if missing else [],
                writes_held=to_hold,
                sequences_presynced=len(behind),
            )
            self.report["changed"] = bool(missing or to_hold or behind)
            return
        clock = self.clock
        clock.start("gate")
        self.check_gates(probe=True)
        clock.finish()
        clock.start("prepare")
        self.prepare()
        if self.run_as_subscription_owner():
            self.report["prepared"].append("subscription %s applies as its owner" % self.path["subscription"])
        clock.finish()
        behind = self.sequences_behind()
        if behind:
            statement, params = setval_statement(behind)
            self.new.run("pre-syncing sequences", statement, params)
        self.report["sequences_presynced"] = len(behind)
        self.report["writes_held"] = _write_hold.hold(self.new, new_roles, self.write_hold_exceptions)
        if behind or self.report["writes_held"]:
            self.report["changed"] = True
        self.report["state"] = "prepared"

    def run_as_subscription_owner(self, apply=True):
        """From PostgreSQL 16 the apply worker writes as each table's owner, the role the hold takes
        writes from: it must write as the subscription's owner instead. True when this changed it."""
        subscriber = self.side(self.path["subscriber"])
        if subscriber.version_num < 160000:
            return False
        row = subscriber.one(
            "reading subscription %s" % self.path["subscription"],
            "SELECT subrunasowner FROM pg_subscription WHERE subname = %s"
            " AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (self.path["subscription"],),
        )
        if row is None or row["subrunasowner"]:
            return False
        if not apply:
            return True
        subscriber.run(
            "letting subscription %s apply as its owner" % self.path["subscription"],
            _sql.SQL("ALTER SUBSCRIPTION {} SET (run_as_owner = true)").format(
                _sql.Identifier(self.path["subscription"])
            ),
        )
        return True

    def sequences_behind(self):
        """The old side's sequence values that differ on the new side (Odoo's registry signalling
        among them: set before the warm-up, the registry it loads is current after the switch)."""
        old_values = read_sequences(self.old)
        new_values = dict(((v["schema"], v["name"]), v) for v in read_sequences(self.new))
        behind = []
        for value in old_values:
            now = new_values.get((value["schema"], value["name"]))
            if now is not None and (now["last_value"], now["is_called"]) != (
                value["last_value"],
                value["is_called"],
            ):
                behind.append(value)
        return behind

    def execute(self):
        clock = self.clock
        try:
            clock.start("prepare")
            self.prepare()
            clock.finish()
            clock.start("gate")
            self.check_gates(probe=True)
            clock.finish()
            self.report["changed"] = True
            clock.start("fence")
            self.fence()
            clock.finish()
            clock.start("marker")
            self.commit_marker()
            clock.finish()
            clock.start("drain")
            self.drain()
            clock.finish()
            clock.start("large_objects")
            self.report["large_objects"] = self.copy_large_objects("inside the fence")
            clock.finish()
            clock.start("sequences")
            self.copy_sequences()
            clock.finish(check=False)  # checked before commit, inside copy_sequences
            if self.export_snapshots:
                clock.start("snapshots")
                self.hold_snapshots()
                clock.finish()
            if self.build_return_path:
                clock.start("return_path")
                self.report["return_path_created"] = create_path(
                    self.side(self.return_path["publisher"]),
                    self.side(self.return_path["subscriber"]),
                    self.return_path,
                    self.conninfo[self.return_path["publisher"]],
                )
                clock.finish()
        except (_pg.PgError, BudgetExceeded) as error:
            if clock.current is not None:
                clock.finish(ok=False, check=False)
            self.abort(error)
            raise CutoverError(self.report["abort_reason"], self.report)
        # The point of no return: the path in use goes away.
        self.report["point_of_no_return_passed"] = True
        try:
            clock.start("drop_path")
            self.report["dropped"] = drop_subscription(
                self.side(self.path["subscriber"]),
                self.side(self.path["publisher"]),
                self.path["subscription"],
                self.path["slot"],
                clock=clock,
            )
            clock.finish(check=False)
            clock.start("unfence")
            self.report["unfenced_on_new"] = unfence_roles(self.new)
            # Writes held since before the window (an application warmed up against the new side) come back.
            self.report["writes_released"] = _write_hold.release(self.new)
            clock.finish(check=False)
        except (_pg.PgError, BudgetExceeded) as error:
            if clock.current is not None:
                clock.finish(ok=False, check=False)
            self.report["write_unavailable_seconds"] = clock.window_seconds()
            message = (
                "cutover failed after the point of no return (the %s is fenced, every write is on the %s): %s"
                % (self.old.describe(), self.new.describe(), self._redact(error))
            )
            self.report["abort_reason"] = message
            raise CutoverError(message, self.report)
        self.report["write_unavailable_seconds"] = clock.window_seconds()
        self.report["over_budget"] = [r["step"] for r in clock.records if r.get("over_budget")]
        self.report["state"] = "switched"
        # Writes are back on the new side; what follows does not hold them up.
        self.report["materialized_views"] = self.refresh_materialized_views()
        self.report["login_roles"] = self.carry_login_roles()

    def copy_large_objects(self, when):
        try:
            return _large_objects.sync(self.old.conn, self.new.conn, self.renamed)
        except _pg.psycopg.Error as error:
            raise _pg.PgError(
                "copying large objects %s from the %s to the %s failed (both logins must read and write "
                "every large object: superusers, as the migration's logins are): %s"
                % (when, self.old.describe(), self.new.describe(), _pg.error_text(error, self.secrets))
            )

    def refresh_materialized_views(self):
        """Refresh, on the new side, every materialized view populated on the old side
        (replication carries their tables, never their contents)."""
        started = time.monotonic()
        names = [row["name"] for row in self.old.run("listing materialized views", MATERIALIZED_VIEWS_SQL)]
        refreshed, failed = refresh_materialized_views(self.new.conn, names, self.secrets)
        return dict(refreshed=refreshed, failed=failed, seconds=round(time.monotonic() - started, 4))

    @staticmethod
    def _password_hash(side, role):
        """The role's stored password hash (None when unset or unreadable: not a superuser)."""
        try:
            row = side.one(
                "reading the password of role %s" % role,
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                (role,),
            )
        except _pg.PgError:
            return None
        return row["rolpassword"] if row else None

    def carry_login_roles(self):
        """Give every other login role the database uses its login and password on the new side
        (the copy created it NOLOGIN); application roles are the application cutover's."""
        report = []
        skip = set(self.roles_on[self.old_name]) | set([self.old.endpoint.user, self.new.endpoint.user])
        for row in self.old.run("listing the database's roles", DATABASE_ROLES_SQL):
            role = row["name"]
            if role in skip:
                continue
            new_role = self.renamed.get(role, role)
            old = self.old.one(
                "reading role %s" % role,
                "SELECT rolcanlogin, rolsuper, rolvaliduntil::text AS valid_until "
                "FROM pg_roles WHERE rolname = %s",
                (role,),
            )
            if not old or not old["rolcanlogin"] or old["rolsuper"]:
                continue
            new = _role_now(self.new, new_role)
            entry = dict(role=role) if new_role == role else dict(role=role, renamed=new_role)
            report.append(entry)
            if new is None:
                entry["action"] = "missing on the %s: create it and set its password" % self.new_name
                continue
            password = self._password_hash(self.old, role)
            if password and new_role != role and password.startswith("md5"):
                # An MD5 hash is salted with the role's name: it cannot log in under another one.
                password = None
            if new["rolcanlogin"]:
                same = password is not None and password == self._password_hash(self.new, new_role)
                entry["action"] = (
                    "already logs in on the %s with the same password" % self.new_name
                    if same
                    else "already logs in on the %s with another password (another instance's role of "
                    "the same name?): left as it is; give each instance its own role or set the password"
                    % self.new_name
                )
                continue
            if parse_fence_comment(new["comment"]) is not None:
                entry["action"] = "fenced by a migration on the %s; left fenced" % self.new_name
                continue
            statement = "ALTER ROLE {} LOGIN"
            values = [_sql.Identifier(new_role)]
            if password:
                statement += " PASSWORD {}"
                values.append(_sql.Literal(password))
            if old["valid_until"]:
                statement += " VALID UNTIL {}"
                values.append(_sql.Literal(old["valid_until"]))
            try:
                _pg.execute_with_secret(self.new.conn, _sql.SQL(statement).format(*values))
            except _pg.psycopg.Error as error:
                entry["action"] = "could not be given its login on the %s: %s" % (
                    self.new_name,
                    _pg.error_text(error, self.secrets),
                )
                continue
            entry["action"] = (
                "logs in on the %s with its password from the %s" % (self.new_name, self.old_name)
                if password
                else "logs in on the %s; its password could not be read on the %s: set it"
                % (self.new_name, self.old_name)
            )
        return report

    def fence(self):
        old = self.old
        roles = self.roles_on[self.old_name]
        fence_roles(old, roles)
        report = dict(side=self.old_name, roles=roles, grace_seconds=self.grace_seconds)
        self.report["fence"] = report
        grace_end = time.monotonic() + self.grace_seconds
        while time.monotonic() < grace_end:
            if not any(row["in_transaction"] for row in role_sessions(old, roles)):
                break
            time.sleep(POLL_SECONDS)
        report["grace_waited_seconds"] = round(self.grace_seconds - max(grace_end - time.monotonic(), 0), 4)
        report["terminated_sessions"] = terminate_sessions(old, roles)
        # A login that authenticated just before NOLOGIN committed is terminated too.
        wait_until(
            lambda: terminate_sessions(old, roles) == 0, self.clock, what="no application session left"
        )

    def commit_marker(self):
        token = str(uuid.uuid4())
        row = self.old.one(
            "committing the fence marker",
            "INSERT INTO odoo_migration.marker (token) VALUES (%s) RETURNING id",
            (token,),
        )
        lsn = self.old.one("reading the WAL position", "SELECT pg_current_wal_lsn()::text AS lsn")
        self.report["marker"] = dict(token=token, id=row["id"], lsn=lsn["lsn"], side=self.old_name)

    def drain(self):
        token = self.report["marker"]["token"]
        new = self.new
        wait_until(
            lambda: new.one(
                "looking for the fence marker",
                "SELECT 1 AS x FROM odoo_migration.marker WHERE token = %s",
                (token,),
            ),
            self.clock,
            what="the fence marker on the %s" % new.name,
        )

    def copy_sequences(self):
        old, new = self.old, self.new
        values = read_sequences(old)
        owned = owned_sequences(new)
        owned_names = set((row["schema"], row["name"]) for row in owned)
        report = dict(
            copied=len(values),
            standalone=sorted(
                "%s.%s" % (v["schema"], v["name"])
                for v in values
                if (v["schema"], v["name"]) not in owned_names
            ),
            owned=len(owned),
            guard_violations=[],
            direction="%s to %s" % (self.old_name, self.new_name),
        )
        self.report["sequences"] = report
        by_name = dict(((v["schema"], v["name"]), v) for v in values)
        present = set((row["schema"], row["name"]) for row in new.run("listing sequences", SEQUENCE_LIST_SQL))
        missing = sorted("%s.%s" % key for key in by_name if key not in present)
        if missing:
            raise _pg.PgError("sequences missing on the %s: %s" % (new.describe(), ", ".join(missing[:20])))
        with new.conn.transaction():
            if values:
                statement, params = setval_statement(values)
                new.run("setting sequences", statement, params)
            maxima = {}
            for statement in guard_statements(owned):
                for row in new.run("guarding owned sequences", statement):
                    maxima[row["i"]] = row["max"]
            violations = guard_violations(owned, maxima, by_name)
            report["guard_violations"] = violations
            if violations:
                raise _pg.PgError(
                    "sequence guard: %d owned sequences would be behind their column on the %s, first: %s"
                    % (len(violations), new.describe(), violations[0])
                )
            self.clock.check()  # over budget: the transaction rolls back

    def hold_snapshots(self):
        """Both sides are quiet (old fenced and drained into new, new not open yet): export a
        snapshot on each, held by a detached process, so pg_compare can compare this instant
        once users work again."""
        infos = _snapshot_holder.start(
            [self.endpoints["source"], self.endpoints["target"]],
            SNAPSHOT_HOLDER_NAME,
            max_seconds=SNAPSHOT_MAX_SECONDS,
        )
        source, target = infos
        self.report["snapshots"] = dict(
            source=dict(snapshot=source["snapshot"], backend_pid=source["backend_pid"]),
            target=dict(snapshot=target["snapshot"], backend_pid=target["backend_pid"]),
        )

    def release_snapshots(self):
        released = []
        for name, held in (self.report.get("snapshots") or {}).items():
            if name in self.sides and _snapshot_holder.release(
                self.sides[name].conn, held["backend_pid"], SNAPSHOT_HOLDER_NAME
            ):
                released.append(name)
        return released

    def abort(self, error):
        """Before the point of no return: undo the return path, unfence the old side, keep replication."""
        reason = self._redact(error)
        self.report["aborted"] = True
        undone = self.report["undone"]
        fenced = self.report.get("fence") is not None
        try:
            for name in self.release_snapshots():
                undone.append("snapshot held on the %s" % name)
            if any(record["step"] == "return_path" for record in self.clock.records):
                publisher = self.side(self.return_path["publisher"])
                subscriber = self.side(self.return_path["subscriber"])
                undone += drop_subscription(
                    subscriber, publisher, self.return_path["subscription"], self.return_path["slot"]
                )
                if drop_slot(publisher, self.return_path["slot"]):
                    undone.append("slot %s" % self.return_path["slot"])
            if fenced or (self.old_name in self.sides and fence_rows(self.old)):
                restored = unfence_roles(self.old)
                if restored:
                    undone.append("fence of %s on the %s" % (", ".join(restored), self.old_name))
                self.report["unfenced"] = True
        except _pg.PgError as undo_error:
            reason += "; undoing it failed too: %s" % self._redact(undo_error)
            self.report["unfenced"] = False
        self.report["write_unavailable_seconds"] = self.clock.window_seconds()
        self.report["abort_reason"] = (
            "cutover aborted before the point of no return, replication %s kept: %s"
            % (
                self.path["name"],
                reason,
            )
        )


def run_cutover(source, target, **options):
    """Run (or, with check_mode, plan) the cutover; return the report or raise CutoverError."""
    _pg.require_psycopg()
    return Cutover(source, target, **options).run()


# --------------------------------------------------------------------------------------
# Finalize
# --------------------------------------------------------------------------------------


def run_finalize(
    source,
    target,
    restore_roles=True,
    drop_helper_schema=True,
    check_mode=False,
    secrets=(),
    replication_logins=(),
):
    """Drop both directions' subscriptions, slots, publications, the helper schema and the return paths'
    logins (replication_logins, on either side); restore roles."""
    _pg.require_psycopg()
    secrets = [s for s in list(secrets) + [source.password, target.password] if s]
    database = source.database
    forward, reverse = paths(FORWARD, database)
    sides_ = {}
    actions = []
    try:
        for name, endpoint in (("source", source), ("target", target)):
            sides_[name] = open_side(name, endpoint, secrets)
        src, tgt = sides_["source"], sides_["target"]
        plan = []
        for path in (forward, reverse):
            sub_side, pub_side = sides_[path["subscriber"]], sides_[path["publisher"]]
            if subscription_state(sub_side, path["subscription"]) is not None:
                plan.append(("subscription", path, sub_side, pub_side))
        for path in (forward, reverse):
            pub_side = sides_[path["publisher"]]
            if slot_state(pub_side, path["slot"]) is not None:
                plan.append(("slot", path, pub_side, None))
            if pub_side.one(
                "reading publications",
                "SELECT 1 AS x FROM pg_publication WHERE pubname = %s",
                (path["publication"],),
            ):
                plan.append(("publication", path, pub_side, None))
        roles = {}
        for side in (src, tgt):
            rows = fence_rows(side) if restore_roles else []
            roles[side.name] = [row["role_name"] for row in rows]
            if rows:
                plan.append(("roles", None, side, None))
        # Holds left by a prepared cutover that never switched: the schema that records them goes away.
        held = dict(
            (side.name, _write_hold.recorded_holds(side) if drop_helper_schema else []) for side in (src, tgt)
        )
        for side in (src, tgt):
            if held[side.name]:
                plan.append(("writes", None, side, None))
        for side in (src, tgt):
            if drop_helper_schema and side.one(
                "reading schemas", "SELECT 1 AS x FROM pg_namespace WHERE nspname = %s", (HELPER_SCHEMA,)
            ):
                plan.append(("schema", None, side, None))
        # The return paths' logins, once their subscriptions are gone (only those marked as ours).
        for side in (src, tgt):
            for login in replication_logins:
                if is_replication_login(side, login):
                    plan.append(("login", login, side, None))
        for kind, path, side, other in plan:
            what = dict(
                action="restore" if kind in ("roles", "writes") else "drop", kind=kind, side=side.name
            )
            if kind == "login":
                what["name"] = path
            elif path is not None:
                what["name"] = path[
                    {"subscription": "subscription", "slot": "slot", "publication": "publication"}[kind]
                ]
            if kind == "roles":
                what["roles"] = roles[side.name]
            if kind == "writes":
                what["roles"] = sorted(set(row["role"] for row in held[side.name]))
            if kind == "schema":
                what["name"] = HELPER_SCHEMA
            actions.append(what)
            if check_mode:
                continue
            if kind == "subscription":
                drop_subscription(side, other, path["subscription"], path["slot"])
            elif kind == "slot":
                drop_slot(side, path["slot"])
            elif kind == "publication":
                drop_publication(side, path["publication"])
            elif kind == "roles":
                unfence_roles(side)
            elif kind == "writes":
                _write_hold.release(side)
            elif kind == "schema":
                side.run("dropping the helper schema", "DROP SCHEMA IF EXISTS odoo_migration CASCADE")
            elif kind == "login":
                # Kept while another database of the instance still lets it connect; its finalize drops it.
                what["result"] = drop_replication_login(side, path)
        return dict(changed=bool(actions), actions=actions, database=database)
    finally:
        for side in sides_.values():
            try:
                side.conn.close()
            except Exception:  # pragma: no cover
                pass


def endpoints_from_params(params):
    """(source, target) PgEndpoints; the target database defaults to the source's."""
    source = _pg.PgEndpoint.from_params(params["source"])
    target = _pg.PgEndpoint.from_params(params["target"], source.database)
    return source, target
