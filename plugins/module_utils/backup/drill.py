# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore drill: a pgBackRest backup brought back into a scratch instance and proven readable.

Private to this collection. The drill runs as the PostgreSQL owner on a host that has pgBackRest's
configuration for the stanza and the server binaries of the backup's major version. Nothing of it
touches the production cluster: the scratch instance listens on a socket in its own directory only,
archives nothing (pgBackRest's --archive-mode=off, so no new timeline reaches the repository), and
its directory is removed at the end.

pgBackRest's `restore` exits 0 even when the recovery target cannot be reached (the server then stops
with "recovery ended before configured recovery target was reached"), so the verdict comes from the
started instance: promoted, and the last transaction it replayed (pg_last_xact_replay_timestamp()).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re
import shutil
import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import pgbackrest as _pgbackrest

TARGET_TYPES = ("latest", "immediate", "time", "name")
MIB = 1024 * 1024
# Every table of the database that survives a restore (unlogged tables come back empty).
_COUNT_TABLES = (
    "SELECT format('%I.%I', n.nspname, c.relname),"
    " (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),"
    " false, true, '')))[1]::text"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
    " ORDER BY 1"
)
_RESTORED_SET = re.compile(r"restore backup set (?P<label>\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?)")
_CONTROL_SETTINGS = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DrillError(Exception):
    """The drill could not run to its end; the message says what and what to do."""


class Layout(object):
    """Where the scratch instance lives."""

    def __init__(self, scratch_dir):
        self.root = scratch_dir
        self.data = os.path.join(scratch_dir, "data")
        self.spool = os.path.join(scratch_dir, "spool")
        self.tablespaces = os.path.join(scratch_dir, "tablespaces")
        self.socket = os.path.join(scratch_dir, "run")
        self.log = os.path.join(scratch_dir, "postgresql.log")
        self.marker = os.path.join(scratch_dir, ".odoo-migration-drill")


def choose_backup(backups, target_type, target_epoch=None):
    """The backup a restore to that target starts from: the newest one (for a time, the newest that
    stopped before it), as pgBackRest itself chooses."""
    usable = [backup for backup in backups if not backup["error"]]
    if target_type == "time":
        usable = [backup for backup in usable if backup["stop"] < target_epoch]
    if not usable:
        raise DrillError(
            "no backup of the stanza stopped before %s: choose a later target or take a backup"
            % ("the target time" if target_type == "time" else "now")
        )
    return usable[-1]


def space_needed(backup):
    """Bytes the restored data directory takes, with a margin for the WAL that recovery replays."""
    return int((backup.get("size_bytes") or 0) * 1.1) + 256 * MIB


def free_space(path):
    """Bytes free for an unprivileged user on the filesystem that holds path (or its nearest parent)."""
    while not os.path.exists(path):
        path = os.path.dirname(path) or "/"
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def check_space(scratch_dir, backup, reserve_mb):
    needed = space_needed(backup)
    free = free_space(scratch_dir)
    if needed + reserve_mb * MIB > free:
        raise DrillError(
            "the drill does not fit on the disk: restoring backup %s needs %d MiB in %s and %d MiB must "
            "stay free for the host, but only %d MiB are free. Nothing was restored; give the drill a "
            "scratch_dir on a larger "
            "filesystem or run it on the container host"
            % (backup["label"], needed // MIB, scratch_dir, reserve_mb, free // MIB)
        )
    return needed, free


def restore_options(layout, target_type, target, backup_label):
    options = [
        "--pg1-path=%s" % layout.data,
        "--archive-mode=off",
        "--spool-path=%s" % layout.spool,
        "--tablespace-map-all=%s" % layout.tablespaces,
        "--set=%s" % backup_label,
        "--log-level-console=info",
    ]
    # pgBackRest's default target action is pause: a drill's instance must end recovery and promote.
    if target_type == "immediate":
        options += ["--type=immediate", "--target-action=promote"]
    elif target_type in ("time", "name"):
        options += ["--type=%s" % target_type, "--target=%s" % target, "--target-action=promote"]
    return options


def read_control_settings(text):
    """The settings a recovering server must match or exceed, from pg_controldata's output."""
    settings = {}
    for line in text.splitlines():
        name, _sep, value = line.partition(":")
        if name.strip() in _CONTROL_SETTINGS:
            settings[_CONTROL_SETTINGS[name.strip()]] = value.strip()
    return settings


def scratch_configuration(layout, port, control_settings):
    """postgresql.conf of the scratch instance: reachable by its own socket only, archiving nothing."""
    lines = [
        "# Written by sysgenpro.odoo_migration's restore drill: a scratch instance, removed after the drill.",
        "port = %d" % port,
        "listen_addresses = ''",
        "unix_socket_directories = '%s'" % layout.socket,
        "shared_buffers = '128MB'",
        "archive_mode = 'off'",
        "logging_collector = off",
        "hot_standby = on",
    ]
    for name in sorted(control_settings):
        lines.append("%s = %s" % (name, control_settings[name]))
    return "\n".join(lines) + "\n"


def parse_counts(text):
    counts = {}
    for line in text.splitlines():
        if "|" in line:
            table, _sep, value = line.rpartition("|")
            counts[table] = int(value)
    return counts


def compare_counts(expected, restored):
    """Tables whose restored row count differs from the expected one, as {table: [expected, restored]}."""
    differences = {}
    for table, count in sorted(expected.items()):
        found = restored.get(table)
        if found != int(count):
            differences[table] = [int(count), found]
    return differences


class Drill(object):
    """One drill, step by step; `run` is given a command runner (argv -> rc, stdout, stderr)."""

    def __init__(self, run, stanza, pgbackrest="pgbackrest", config=None, port=5499, timeout=900):
        self.run = run
        self.stanza = stanza
        self.pgbackrest = pgbackrest
        self.config = config
        self.port = port
        self.timeout = timeout
        self.bin_dir = None

    def pgbackrest_command(self, action, options=()):
        return _pgbackrest.command(self.pgbackrest, self.stanza, action, self.config, None, options)

    def info(self):
        rc, out, err = self.run(self.pgbackrest_command("info", ["--output=json"]))
        if rc != 0:
            raise DrillError(str(_pgbackrest.explain_failure(rc, out, err)))
        info = _pgbackrest.parse_info(out, self.stanza)
        failure = _pgbackrest.explain_repository_status(info)
        if failure is not None:
            raise DrillError(str(failure))
        if (info.get("status") or {}).get("code") != _pgbackrest.STATUS_OK:
            raise DrillError(
                "stanza %s has no backup to drill (%s): run the backup baseline first"
                % (self.stanza, (info.get("status") or {}).get("message"))
            )
        versions = [db.get("version") for db in info.get("db") or []]
        self.bin_dir = "/usr/lib/postgresql/%s/bin" % versions[-1]
        return info

    def binary(self, name):
        return os.path.join(self.bin_dir, name)

    def prepare(self, layout):
        """An empty scratch directory of the drill's own (a crashed drill's leftovers are cleared first)."""
        if os.path.isdir(layout.root) and os.listdir(layout.root) and not os.path.exists(layout.marker):
            raise DrillError(
                "scratch_dir %s exists and was not made by a drill: nothing was restored; "
                "name a new or empty "
                "directory" % layout.root
            )
        self.clear(layout)
        for path in (layout.root, layout.spool, layout.socket):
            os.makedirs(path, mode=0o700, exist_ok=True)
        with open(layout.marker, "w") as handle:
            handle.write("a restore drill's scratch directory, removed when the drill ends\n")

    def clear(self, layout):
        """Stop a scratch instance a drill left running; remove its directory (only one a drill made)."""
        if not os.path.exists(layout.marker):
            return
        if os.path.exists(os.path.join(layout.data, "postmaster.pid")):
            self.run([self.binary("pg_ctl"), "-D", layout.data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(layout.root)

    def restore(self, layout, target_type, target, backup_label):
        rc, out, err = self.run(
            self.pgbackrest_command("restore", restore_options(layout, target_type, target, backup_label))
        )
        if rc != 0:
            raise DrillError(str(_pgbackrest.explain_failure(rc, out, err)))
        found = _RESTORED_SET.search(out + err)
        return found.group("label") if found else backup_label

    def configure(self, layout):
        rc, out, err = self.run([self.binary("pg_controldata"), layout.data])
        if rc != 0:
            raise DrillError("pg_controldata cannot read the restored directory: %s" % (err or out).strip())
        with open(os.path.join(layout.data, "postgresql.conf"), "w") as handle:
            handle.write(scratch_configuration(layout, self.port, read_control_settings(out)))
        with open(os.path.join(layout.data, "pg_hba.conf"), "w") as handle:
            handle.write("local all all peer\n")
        with open(os.path.join(layout.data, "pg_ident.conf"), "w") as handle:
            handle.write("")

    def start(self, layout):
        """Start the instance and wait until recovery has ended and it is promoted."""
        started = time.time()
        rc, out, err = self.run(
            [
                self.binary("pg_ctl"),
                "-D",
                layout.data,
                "-l",
                layout.log,
                "-w",
                "-t",
                str(self.timeout),
                "start",
            ]
        )
        if rc != 0:
            raise DrillError("the restored instance did not start: %s" % self.log_tail(layout))
        while time.time() - started < self.timeout:
            rc, out, err = self.sql(layout, "postgres", "SELECT pg_is_in_recovery()")
            if rc == 0 and out.strip() == "f":
                return time.time() - started
            if rc == 0 and self.replay_paused(layout):
                raise DrillError(
                    "recovery paused at its target instead of ending "
                    "(recovery_target_action is not promote): %s" % self.log_tail(layout)
                )
            if not os.path.exists(os.path.join(layout.data, "postmaster.pid")):
                raise DrillError("the restored instance stopped during recovery: %s" % self.log_tail(layout))
            time.sleep(0.5)
        raise DrillError("recovery did not end within %d s: %s" % (self.timeout, self.log_tail(layout)))

    def replay_paused(self, layout):
        """A paused recovery never ends by itself (PostgreSQL 14 and later say so; older ones never do)."""
        rc, out, _err = self.sql(layout, "postgres", "SELECT pg_get_wal_replay_pause_state()")
        return rc == 0 and out.strip() == "paused"

    def stop(self, layout):
        if os.path.exists(os.path.join(layout.data, "postmaster.pid")):
            self.run([self.binary("pg_ctl"), "-D", layout.data, "-m", "fast", "-w", "stop"])

    def log_tail(self, layout, lines=8):
        try:
            with open(layout.log, encoding="utf-8", errors="replace") as handle:
                tail = [line.strip() for line in handle.readlines()[-lines:]]
        except OSError:
            return "no server log"
        fatal = [line for line in tail if "FATAL" in line or "PANIC" in line]
        return " | ".join(fatal or tail)

    def sql(self, layout, database, query):
        return self.run(
            [
                self.binary("psql"),
                "-X",
                "-A",
                "-t",
                "-F",
                "|",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                layout.socket,
                "-p",
                str(self.port),
                "-d",
                database,
                "-c",
                query,
            ]
        )

    def query(self, layout, database, query):
        rc, out, err = self.sql(layout, database, query)
        if rc != 0:
            raise DrillError("query on the restored %s failed: %s" % (database, (err or out).strip()))
        return out

    def recovery_point(self, layout, backup):
        out = self.query(
            layout,
            "postgres",
            "SELECT to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC',"
            ' \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'),'
            " pg_last_wal_replay_lsn(), (pg_control_checkpoint()).timeline_id",
        )
        point, lsn, timeline = (out.strip().split("|") + ["", "", ""])[:3]
        reached = {"time": point, "lsn": lsn or None, "timeline": int(timeline) if timeline else None}
        reached["source"] = "last_replayed_transaction"
        if not point:
            # Nothing was committed after the backup: the backup's own end is the point recovered to.
            reached["time"] = _utc(backup["stop"])
            reached["source"] = "backup_end"
        return reached

    def databases(self, layout):
        out = self.query(
            layout,
            "postgres",
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
        )
        return [name for name in out.splitlines() if name]

    def read_everything(self, layout, database):
        """pg_dump reads every row of every table (TOAST included) and throws the dump away."""
        rc, out, err = self.run(
            [
                self.binary("pg_dump"),
                "-h",
                layout.socket,
                "-p",
                str(self.port),
                "-d",
                database,
                "-Fc",
                "-Z",
                "0",
                "--no-sync",
                "-f",
                os.devnull,
            ]
        )
        return None if rc == 0 else (err or out).strip()

    def counts(self, layout, database):
        return parse_counts(self.query(layout, database, _COUNT_TABLES))

    def amcheck(self, layout):
        """pg_amcheck over every database: heap and B-tree indexes, every heap tuple found by its indexes,
        unique indexes really unique."""
        rc, out, err = self.run(
            [
                self.binary("pg_amcheck"),
                "-h",
                layout.socket,
                "-p",
                str(self.port),
                "--all",
                "--install-missing",
                "--heapallindexed",
                "--checkunique",
                "--no-strict-names",
            ]
        )
        problems = [line for line in (out + err).splitlines() if line.strip()]
        return {"ok": rc == 0, "problems": problems[:50]}

    def attachments(self, layout, database):
        out = (
            self.query(
                layout,
                database,
                "SELECT DISTINCT store_fname FROM ir_attachment"
                " WHERE store_fname IS NOT NULL AND store_fname <> ''"
                " ORDER BY 1",
            )
            if self.has_table(layout, database, "ir_attachment")
            else ""
        )
        return [name for name in out.splitlines() if name]

    def has_table(self, layout, database, table):
        return (
            self.query(layout, database, "SELECT to_regclass('public.%s') IS NOT NULL" % table).strip() == "t"
        )
