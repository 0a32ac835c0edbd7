"""A user of Odoo writing through its own JSON-RPC while a wave moves it, and the check afterwards.

The writer creates res.partner records named ``wave-writer-<run>-<n>`` through the VM's public
nginx, logging in again after any error, and records every create Odoo acknowledged. ``<run>`` is
new for every writer, so names left by an earlier run can never stand in for this one's. ``stop``
fails unless the writer is still running (a run whose writer never started proves nothing), and
afterwards ``verify`` asks Odoo (wherever it now runs) for each acknowledged name: none may be
missing.

``verify --journal`` also places each acknowledgement in the cutover's window, from the task journal
of the moved host (``window_counts``): before the page, between the VM's stop and the end of the
database cutover (which holds the fence: none may be acknowledged there) and after the switch.

Used as a thread by tests/integration/test_wave.py and as a process by the molecule scenario:
  odoo_jsonrpc_writer.py run    --url URL --host-header NAME --database DB --password-file F --out DIR
  odoo_jsonrpc_writer.py stop   --out DIR
  odoo_jsonrpc_writer.py verify --url URL --host-header NAME --database DB --password-file F --out DIR
                                [--journal migration-state/<host>/journal.jsonl]
"""

import argparse
import datetime
import http.cookiejar
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

NAME_PREFIX = "wave-writer-"
# Tasks of the application cutover whose ends (in the journal) bound the window.
PAGE_TASK = "switch | Put the maintenance page in front of the legacy Odoo"
STOP_TASK = "switch | Tell Odoo on the VM to stop"
CUTOVER_TASK = "switch | Cut the databases over (fence, marker, sequences, reverse path)"
LIFT_TASK = "switch | Send traffic to the containers and lift the maintenance page"


def task_ends(journal_path):
    """{task name: when the journal recorded its first end}."""
    ended = {}
    with open(journal_path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                name = record.get("task", "").split(" : ")[-1]
                ended.setdefault(name, datetime.datetime.fromisoformat(record["ts"]))
    return ended


def window_counts(acknowledged_at, ended):
    """How many acknowledgements came before the page, while the fence was held (from the VM's stop
    to the end of the database cutover) and after the switch."""
    page, stop, cutover, lifted = (ended[task] for task in (PAGE_TASK, STOP_TASK, CUTOVER_TASK, LIFT_TASK))
    if not page < stop < cutover < lifted:
        raise ValueError(f"the journal's window is out of order: {page} {stop} {cutover} {lifted}")
    return dict(
        before_page=sum(1 for t in acknowledged_at if t < page),
        during_fence=sum(1 for t in acknowledged_at if stop < t < cutover),
        after_switch=sum(1 for t in acknowledged_at if t > lifted),
    )


def utc_now():
    return datetime.datetime.now(datetime.UTC)


class OdooSession:
    """One logged-in JSON-RPC session through nginx (cookies kept per session)."""

    def __init__(self, url, host_header, database, password):
        self.url, self.host_header = url.rstrip("/"), host_header
        self.database, self.password = database, password
        self.opener = None

    def call(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}).encode()
        headers = {"Content-Type": "application/json", "Host": self.host_header}
        request = urllib.request.Request(self.url + path, body, headers)
        with self.opener.open(request, timeout=10) as response:
            answer = json.load(response)
        if "error" in answer:
            raise RuntimeError(answer["error"].get("message"))
        return answer["result"]

    def login(self):
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.call(
            "/web/session/authenticate", {"db": self.database, "login": "admin", "password": self.password}
        )

    def call_kw(self, model, method, args, kwargs=None):
        params = {"model": model, "method": method, "args": args, "kwargs": kwargs or {}}
        return self.call(f"/web/dataset/call_kw/{model}/{method}", params)


# A writer whose every request has failed this long gives up: a page lasts seconds, while a writer
# left behind by an aborted run (its lab rebuilt, its password gone) would put the lab's address on
# Odoo's login cooldown for every other user.
GIVE_UP_AFTER_SECONDS = 180


class JsonRpcWriter(threading.Thread):
    """Creates partners until stopped; ``acknowledged`` holds the names Odoo confirmed."""

    def __init__(self, session, on_acknowledged=None):
        super().__init__(daemon=True)
        self.session = session
        self.on_acknowledged = on_acknowledged
        self.acknowledged, self.errors = [], 0
        self.stop = threading.Event()
        self.prefix = f"{NAME_PREFIX}{uuid.uuid4().hex[:8]}-"

    def run(self):
        number, logged_in = 0, False
        last_success = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - last_success > GIVE_UP_AFTER_SECONDS:
                print(f"writer: nothing succeeded for {GIVE_UP_AFTER_SECONDS} s, giving up", file=sys.stderr)
                return
            try:
                if not logged_in:
                    self.session.login()
                    logged_in = True
                name = f"{self.prefix}{number}"
                self.session.call_kw("res.partner", "create", [{"name": name}])
                self.acknowledged.append(name)
                last_success = time.monotonic()
                if self.on_acknowledged:
                    self.on_acknowledged(name)
                number += 1
            except (urllib.error.URLError, OSError, RuntimeError, ValueError):
                self.errors += 1
                logged_in = False
                time.sleep(0.5)
            time.sleep(0.1)


def missing_names(session, names, batch=500):
    """The acknowledged names Odoo does not have."""
    session.login()
    present = set()
    for start in range(0, len(names), batch):
        chunk = names[start : start + batch]
        rows = session.call_kw("res.partner", "search_read", [[["name", "in", chunk]]], {"fields": ["name"]})
        present.update(row["name"] for row in rows)
    return sorted(set(names) - present)


def session_from(args):
    password = Path(args.password_file).read_text().strip()
    return OdooSession(args.url, args.host_header, args.database, password)


def command_run(args, out):
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "acknowledged.log").open("a", buffering=1)
    writer = JsonRpcWriter(
        session_from(args), on_acknowledged=lambda name: log.write(f"{name} {utc_now().isoformat()}\n")
    )
    signal.signal(signal.SIGTERM, lambda *_: writer.stop.set())
    (out / "writer.pid").write_text(str(os.getpid()))
    writer.start()
    while writer.is_alive():
        writer.join(0.5)
    (out / "summary.json").write_text(
        json.dumps({"acknowledged": len(writer.acknowledged), "errors": writer.errors})
    )
    return 0


def is_this_writer(pid, out):
    """Whether pid is a writer of this directory still running (a pid file outlives its process,
    and the number may since belong to another process)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(word.endswith(b"odoo_jsonrpc_writer.py") for word in words) and (
        f"--out={out}".encode() in words or str(out).encode() in words
    )


def command_stop(out, wait_seconds=30):
    if not (out / "writer.pid").exists():
        print(f"no writer was started in {out}", file=sys.stderr)
        return 1
    pid = int((out / "writer.pid").read_text())
    if not is_this_writer(pid, out):
        print(
            f"no writer is running for {out} (pid {pid} is not it): none was started in this run, or it died",
            file=sys.stderr,
        )
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while not (out / "summary.json").exists():
        if time.monotonic() > deadline:
            print(f"the writer (pid {pid}) wrote no summary within {wait_seconds} s", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print((out / "summary.json").read_text())
    return 0


def command_verify(args, out):
    lines = [line.split() for line in (out / "acknowledged.log").read_text().splitlines() if line.strip()]
    names = [fields[0] for fields in lines]
    summary = json.loads((out / "summary.json").read_text())
    missing = missing_names(session_from(args), names)
    result = dict(summary, checked=len(names), missing=missing)
    if args.journal:
        acknowledged_at = [datetime.datetime.fromisoformat(fields[1]) for fields in lines]
        result["window"] = window_counts(acknowledged_at, task_ends(args.journal))
    print(json.dumps(result))
    return 1 if missing else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "stop", "verify"))
    parser.add_argument("--out", required=True, help="directory of the pid, the log and the summary")
    parser.add_argument("--url")
    parser.add_argument("--host-header")
    parser.add_argument("--database")
    parser.add_argument("--password-file")
    parser.add_argument(
        "--journal", help="verify: the moved host's journal.jsonl, to place writes in the window"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.command != "stop" and not all((args.url, args.host_header, args.database, args.password_file)):
        parser.error(f"{args.command} needs --url, --host-header, --database and --password-file")
    if args.command == "run":
        return command_run(args, out)
    if args.command == "stop":
        return command_stop(out)
    return command_verify(args, out)


if __name__ == "__main__":
    sys.exit(main())
