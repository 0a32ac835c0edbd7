"""odoo_filestore_sync against rsync on the same content-addressed tree, measured in one run.

A synthetic filestore (random content named by its SHA-1, sizes like scanned documents and
images) is copied local to local by both tools: a cold copy, a re-run with nothing to do,
and a re-run after 1 % new files. Our module also proves every file's SHA-1 (rsync does
not), so its time includes that work; a `verify=sent` row shows the cost of the proof.

    .venv/bin/python benchmarks/filestore_sync.py --mib 1024
Writes benchmarks/results/filestore_sync.{json,md}.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SIZES_KIB = [(2, 40), (40, 300), (300, 1500), (1500, 5000)]
WEIGHTS = [40, 35, 20, 5]


def write_file(root, content):
    digest = hashlib.sha1(content).hexdigest()
    path = root / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return len(content)


def generate(root, mib, seed=19):
    rng = random.Random(seed)
    total, files = 0, 0
    while total < mib * 1024 * 1024:
        low, high = rng.choices(SIZES_KIB, WEIGHTS)[0]
        total += write_file(root, os.urandom(rng.randint(low, high) * 1024))
        files += 1
    return files, total


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(command):
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"{command[0]} failed: {run.stdout[-2000:]} {run.stderr[-2000:]}")
    return time.monotonic() - started, run.stdout


def ours(source, destination, verify):
    env_python = Path(sys.executable).with_name("ansible")
    args = json.dumps({"source_path": str(source), "destination_path": str(destination), "verify": verify})
    os.environ.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    command = [str(env_python), "all", "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", "-m",
               "sysgenpro.odoo_migration.odoo_filestore_sync", "-a", args]  # fmt: skip
    seconds, output = timed(command)
    result = json.loads(output)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return seconds, result["sent_files"]


def rsync(source, destination):
    seconds, _output = timed(["rsync", "-a", f"{source}/", f"{destination}/"])
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024, help="size of the synthetic filestore")
    options = parser.parse_args()
    if shutil.which("rsync") is None:
        sys.exit("rsync is missing: run `bash lab/bootstrap.sh bench`")
    work = Path(tempfile.mkdtemp(prefix="filestore-bench-"))
    try:
        source = work / "source"
        files, total = generate(source, options.mib)
        rows = []
        for verify in ("all", "sent"):
            dest_ours, dest_rsync = work / f"ours-{verify}", work / f"rsync-{verify}"
            cold = drop_caches()
            ours_cold, sent = ours(source, dest_ours, verify)
            drop_caches()
            rsync_cold = rsync(source, dest_rsync)
            ours_noop, noop_sent = ours(source, dest_ours, verify)
            rsync_noop = rsync(source, dest_rsync)
            added_files, added = generate(source, max(1, options.mib // 100), seed=len(rows) + 23)
            ours_delta, delta_sent = ours(source, dest_ours, verify)
            rsync_delta = rsync(source, dest_rsync)
            files += added_files
            rows += [
                {
                    "case": f"cold copy (verify={verify})",
                    "ours_s": ours_cold,
                    "rsync_s": rsync_cold,
                    "sent": sent,
                },
                {
                    "case": f"re-run, nothing new (verify={verify})",
                    "ours_s": ours_noop,
                    "rsync_s": rsync_noop,
                    "sent": noop_sent,
                },  # fmt: skip
                {
                    "case": f"re-run after 1% new files (verify={verify})",
                    "ours_s": ours_delta,
                    "rsync_s": rsync_delta,
                    "sent": delta_sent,
                },  # fmt: skip
            ]
        for row in rows:
            row["ratio_rsync_over_ours"] = round(row["rsync_s"] / row["ours_s"], 2)
            row["ours_s"], row["rsync_s"] = round(row["ours_s"], 3), round(row["rsync_s"], 3)
        version = subprocess.run(["rsync", "--version"], capture_output=True, text=True, check=True)
        rsync_version = version.stdout.splitlines()[0]
        report = {
            "peer": rsync_version,
            "tree": {"files": files, "mib": round(total / 1048576)},
            "page_cache_dropped_before_cold_copies": cold,
            "cpus": os.cpu_count(),
            "rows": rows,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "filestore_sync.json").write_text(json.dumps(report, indent=2) + "\n")
        lines = [
            "# Filestore sync: odoo_filestore_sync vs rsync -a (local to local, one run)",
            "",
            f"Peer: {rsync_version}. Tree: {files} content-addressed files, {report['tree']['mib']} MiB; "
            f"{os.cpu_count()} CPUs; page cache dropped before cold copies: {cold}. "
            "Our times include Ansible's start-up and, with verify=all, hashing every file.",
            "",
            "| case | odoo_filestore_sync (s) | rsync (s) | rsync / ours | files sent |",
            "|---|---|---|---|---|",
        ]
        for row in rows:
            lines.append(
                f"| {row['case']} | {row['ours_s']} | {row['rsync_s']} "
                f"| {row['ratio_rsync_over_ours']} | {row['sent']} |"
            )
        (RESULTS / "filestore_sync.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
