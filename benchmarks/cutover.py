"""What a user of Odoo sees during a cutover: the longest gap between two acknowledged writes.

Each run moves legacy-vm-1 of the lab (`make lab-up` first) from its VM to containers with
playbooks/wave.yml (--limit legacy-vm-1) while an independent writer creates partners through
Odoo's JSON-RPC on the VM's public nginx the whole time, as a user would (login, create, and on
any error half a second's pause, a new login and the next create). Then every acknowledged
partner is looked up through the same public URL (now served by the containers), and the host is
moved back, finalized and cleared (app_rollback, finalize, lab/playbooks/clear_wave.yml) so that the
next run starts from the VM again.

Per run: the longest gap between two acknowledged writes (writer_gap_seconds, the writer's
resolution is about 0.1 s, plus its 0.5 s pause after an error), how long the maintenance page was
up (maintenance_seconds, from app_cutover.yml), how long until the containers served their first
login through the public URL (users_back_seconds, measured by the role itself), the database
write unavailability (from cutover.yml), writes acknowledged and lost. The peer is this collection
before issue 17: its wave report recorded a page of about 39 s per VM (not re-run here).

    .venv/bin/python benchmarks/cutover.py --runs 5
Writes benchmarks/results/cutover.{json,md}.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "files"))
sys.path.insert(0, str(REPO / "benchmarks"))
from lab_playbooks import inventory_host, measured_on, playbook, write_results  # noqa: E402
from odoo_jsonrpc_writer import JsonRpcWriter, OdooSession, missing_names  # noqa: E402

HOST = "legacy-vm-1"
DATABASE = "acme"
HOST_HEADER = "legacy-vm-1.lab.internal"
PEER = "this collection before issue 17 (wave report of make demo): maintenance page about 39 s per VM"
AIMS = {"writer_gap_seconds_p50": 3.0, "writer_gap_seconds_max": 10.0, "lost_writes": 0}


def lab_http_port():
    return inventory_host(HOST)["lab_http_port"]


class TimedWriter(JsonRpcWriter):
    """The integration tests' writer, with the monotonic time of each acknowledgement."""

    def __init__(self, session):
        self.acknowledged_at = []
        super().__init__(session, on_acknowledged=lambda _name: self.acknowledged_at.append(time.monotonic()))


def one_run(number, url, password):
    state = Path(tempfile.mkdtemp(prefix=f"cutover-bench-{number}-"))
    common = ("-e", f"odoo_migration_state_dir={state}", "-e", "wave=wave1", "--limit", HOST)
    # Discovery, image and replication first: the writer then watches the cutover, not the copy.
    for name in ("discover.yml", "containerize.yml", "replicate.yml"):
        playbook(name, *common, "-e", "pg_replicate_allow_restart=true")
    session = OdooSession(url, HOST_HEADER, DATABASE, password)
    writer = TimedWriter(session)
    writer.start()
    time.sleep(5)
    started = time.monotonic()
    try:
        playbook("wave.yml", *common)
    finally:
        wave_seconds = time.monotonic() - started
        time.sleep(5)
        writer.stop.set()
        writer.join(15)
    times = writer.acknowledged_at
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    lost = missing_names(OdooSession(url, HOST_HEADER, DATABASE, password), writer.acknowledged)
    app = yaml.safe_load((state / HOST / "app_cutover.yml").read_text())
    cutover = yaml.safe_load((state / HOST / "cutover.yml").read_text())
    result = dict(
        run=number,
        outcome=app["outcome"],
        writer_gap_seconds=round(max(gaps), 2) if gaps else None,
        maintenance_seconds=app.get("maintenance_seconds"),
        users_back_seconds=app.get("users_back_seconds"),
        write_unavailable_seconds=cutover["databases"][DATABASE]["write_unavailable_seconds"],
        acknowledged_writes=len(writer.acknowledged),
        writer_errors=writer.errors,
        lost_writes=len(lost),
        wave_seconds=round(wave_seconds, 1),
    )
    # Back to the VM, and the target cleared, for the next run.
    playbook("app_rollback.yml", *common)
    playbook("finalize.yml", *common)
    playbook("lab/playbooks/clear_wave.yml")
    return result


def markdown(report):
    lines = [
        "# Cutover as a user sees it (benchmarks/cutover.py)",
        "",
        f"Measured {report['measured_at']} on {report['machine']}; {len(report['runs'])} cutovers of "
        f"{HOST} ({DATABASE}) under a JSON-RPC writer on the public URL.",
        "",
        "| run | outcome | writer gap (s) | maintenance page (s) | "
        "page up to the first login on the containers (s) | "
        "database writes unavailable (s) | writes acknowledged | writer errors | lost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['run']} | {run['outcome']} | {run['writer_gap_seconds']} | "
            f"{run['maintenance_seconds']} | {run['users_back_seconds']} | "
            f"{run['write_unavailable_seconds']} | {run['acknowledged_writes']} | {run['writer_errors']} | "
            f"{run['lost_writes']} |"
        )
    lines += [
        "",
        f"Writer gap p50 {report['writer_gap_seconds_p50']} s "
        f"(aim at most {AIMS['writer_gap_seconds_p50']} s), "
        f"max {report['writer_gap_seconds_max']} s (aim at most {AIMS['writer_gap_seconds_max']} s); "
        f"lost writes {report['lost_writes']} (aim {AIMS['lost_writes']}).",
        "",
        f"Peer: {PEER}; ratio of our p50 writer gap to it: {report['ratio_vs_peer']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{lab_http_port()}"
    password = (REPO / "lab" / ".state" / "secrets" / "odoo-admin-password").read_text().strip()
    runs = []
    for number in range(1, args.runs + 1):
        runs.append(one_run(number, url, password))
        print(json.dumps(runs[-1]), flush=True)
    gaps = [run["writer_gap_seconds"] for run in runs if run["writer_gap_seconds"] is not None]
    report = dict(
        measured_on(PEER),
        aims=AIMS,
        runs=runs,
        writer_gap_seconds_p50=round(statistics.median(gaps), 2) if gaps else None,
        writer_gap_seconds_max=round(max(gaps), 2) if gaps else None,
        maintenance_seconds_p50=round(statistics.median(run["maintenance_seconds"] for run in runs), 2),
        lost_writes=sum(run["lost_writes"] for run in runs),
        ratio_vs_peer=round(statistics.median(gaps) / 39.0, 3) if gaps else None,
    )
    write_results("cutover", report, markdown(report))


if __name__ == "__main__":
    main()
