# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot holder's own process, private: `python -m` this module (snapshot_holder.start does).

It reads a JSON config on stdin (psycopg connection keywords with the password, slot_ident or
nothing, max_seconds, watch), exports a snapshot (with a new replication slot when slot_ident is
given), prints one JSON line and closes its output, then keeps its connection idle until the server
ends it, max_seconds pass, or (with watch) no session of the run that needs it was seen for
watch.idle_seconds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import select
import sys
import time

try:
    import psycopg
except ImportError:  # the modules import this file to ship it; only the holder's own process runs it
    psycopg = None

REDACTED = "********"
POLL_SECONDS = 5


def export(psycopg, cfg):
    """(connection, the JSON line's fields): the snapshot exported and held by this connection."""
    if cfg.get("slot_ident"):
        conn = psycopg.connect(autocommit=True, replication="database", **cfg["conn"])
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        row = conn.execute(
            "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'export')" % cfg["slot_ident"]
        ).fetchone()
        values = [value.decode() if isinstance(value, bytes) else value for value in row]
        out = {"slot": values[0], "lsn": values[1], "snapshot": values[2]}
    else:
        conn = psycopg.connect(autocommit=True, **cfg["conn"])
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot(), pg_current_snapshot()::text").fetchone()
        out = {"snapshot": row[0], "xip": row[1]}
    out.update(backend_pid=pid, holder_pid=os.getpid())
    return conn, out


class Watch:
    """Whether the run that needs the snapshot is still connected (a session of its application name)."""

    def __init__(self, psycopg, cfg):
        self.psycopg = psycopg
        self.settings = cfg.get("watch") or {}
        self.conn_kwargs = dict(cfg["conn"], application_name=cfg["conn"]["application_name"] + "_watch")
        self.conn = None
        self.last_seen = time.monotonic()

    def gone(self):
        if not self.settings:
            return False
        try:
            if self.conn is None:
                self.conn = self.psycopg.connect(autocommit=True, **self.conn_kwargs)
            seen = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = %s",
                (self.settings["application_name"],),
            ).fetchone()[0]
        except Exception:  # the server restarting: count it as seen, ask again next time
            self.conn, seen = None, 1
        if seen:
            self.last_seen = time.monotonic()
        return time.monotonic() - self.last_seen > self.settings["idle_seconds"]


def hold(conn, deadline, watch):
    """Keep the exporting connection idle until the server ends it, the deadline, or the watch says so."""
    sock = conn.pgconn.socket
    while time.monotonic() < deadline and not watch.gone():
        ready, _writable, _failed = select.select([sock], [], [], POLL_SECONDS)
        if ready:
            # The server wrote (its termination notice) or closed the socket (EOF raises).
            try:
                conn.pgconn.consume_input()
            except Exception:
                return
            if conn.pgconn.status != 0:
                return


def main():
    cfg = json.loads(sys.stdin.read())
    try:
        conn, out = export(psycopg, cfg)
    except Exception as error:
        out = {"error": str(error).replace(cfg["conn"].get("password") or "\0", REDACTED)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
        return
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os.close(1)
    os.close(2)
    hold(conn, time.monotonic() + cfg.get("max_seconds", 604800), Watch(psycopg, cfg))


if __name__ == "__main__":
    main()
