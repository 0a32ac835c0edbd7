"""odoo_filestore_sync against rsync on the same content-addressed tree, measured in one run.

A synthetic filestore (random content named by its SHA-1, sizes like scanned documents and
images) is copied local to local by both tools: a cold copy, a re-run with nothing to do,
and a re-run after 1 % new files. Our module also proves every file's SHA-1 (rsync does
not), so its time includes that work; a `verify=sent` row shows the cost of the proof.

Then the S3 path (destination_s3) against the lab's store (MinIO over TLS on
127.0.0.1:9000, `make lab-up`): a cold upload, a re-run with nothing to do and one after 1 %
new files, each proven. There is no peer for it here (no `aws s3 sync`), so it reports
throughput. Skipped when the store does not answer.

    .venv/bin/python benchmarks/filestore_sync.py --mib 1024 --s3-mib 256
Writes benchmarks/results/filestore_sync.{json,md}.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import boto3

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
    return run_module({"source_path": str(source), "destination_path": str(destination), "verify": verify})


def run_module(arguments):
    env_python = Path(sys.executable).with_name("ansible")
    args = json.dumps(arguments)
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
    if result.get("failed"):
        sys.exit(f"odoo_filestore_sync failed: {result.get('msg')}")
    return seconds, result["sent_files"], result["seconds"]


def s3_bench(work, mib, endpoint):
    """Upload a synthetic tree to the lab's S3 store: cold, no-op re-run, 1 % delta. Rows or None."""
    state = REPO / "lab" / ".state"
    ca_file = str(state / "tls" / "lab-ca.crt")
    context = ssl.create_default_context(cafile=ca_file) if os.path.exists(ca_file) else None
    try:
        urllib.request.urlopen(endpoint + "/minio/health/live", timeout=5, context=context).close()
    except (OSError, ValueError):
        return None

    def secret(name):
        return (state / "secrets" / name).read_text().strip()

    # The root makes and removes the bucket; the module signs with the filestore's own key.
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", verify=ca_file,
                          aws_access_key_id=secret("minio-root-user"),
                          aws_secret_access_key=secret("minio-root-password"))  # fmt: skip
    bucket = f"odoo-filestore-bench-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    source = work / "s3-source"
    files, total = generate(source, mib, seed=31)
    spec = {"endpoint_url": endpoint, "bucket": bucket, "prefix": "filestore/bench", "region": "us-east-1",
            "access_key": secret("s3-filestore-access-key"), "secret_key": secret("s3-filestore-secret-key"),
            "ca_bundle": ca_file}  # fmt: skip
    rows = []
    try:
        for case in ("cold upload", "re-run, nothing new", "re-run after 1% new files"):
            if case.startswith("re-run after"):
                generate(source, max(1, mib // 100), seed=37)
            upload = {"source_path": str(source), "destination_s3": spec, "jobs": 8}
            seconds, sent, _engine = run_module(upload)
            rows.append(
                {"case": f"{case} (proof=checksum, jobs=8)", "seconds": round(seconds, 3), "sent": sent}
            )
        sent_only = {"source_path": str(source), "destination_s3": spec, "jobs": 8, "verify": "sent"}
        seconds, _sent, _engine = run_module(sent_only)
        case = "re-run, nothing new (verify=sent: the listing only)"
        rows.append({"case": case, "seconds": round(seconds, 3), "sent": 0})
        by_content = {"source_path": str(source), "destination_s3": dict(spec, proof="content"), "jobs": 8}
        seconds, _sent, _engine = run_module(by_content)
        case = "re-run, nothing new (proof=content: every object read back)"
        rows.append({"case": case, "seconds": round(seconds, 3), "sent": 0})
    finally:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
        client.delete_bucket(Bucket=bucket)
    rows[0]["mib_per_s"] = round(total / 1048576 / rows[0]["seconds"], 1)
    return {"tree": {"files": files, "mib": round(total / 1048576)}, "rows": rows}


def rsync(source, destination):
    seconds, _output = timed(["rsync", "-a", f"{source}/", f"{destination}/"])
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024, help="size of the synthetic filestore")
    parser.add_argument("--s3-mib", type=int, default=256, help="size of the tree uploaded to S3 (0: skip)")
    parser.add_argument("--s3-endpoint", default="https://127.0.0.1:9000", help="the lab's S3 store")
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
            ours_cold, sent, engine_cold = ours(source, dest_ours, verify)
            drop_caches()
            rsync_cold = rsync(source, dest_rsync)
            ours_noop, noop_sent, engine_noop = ours(source, dest_ours, verify)
            rsync_noop = rsync(source, dest_rsync)
            added_files, added = generate(source, max(1, options.mib // 100), seed=len(rows) + 23)
            ours_delta, delta_sent, engine_delta = ours(source, dest_ours, verify)
            rsync_delta = rsync(source, dest_rsync)
            files += added_files
            rows += [
                {
                    "case": f"cold copy (verify={verify})",
                    "ours_s": ours_cold,
                    "ours_module_s": engine_cold,
                    "rsync_s": rsync_cold,
                    "sent": sent,
                },
                {
                    "case": f"re-run, nothing new (verify={verify})",
                    "ours_s": ours_noop,
                    "ours_module_s": engine_noop,
                    "rsync_s": rsync_noop,
                    "sent": noop_sent,
                },  # fmt: skip
                {
                    "case": f"re-run after 1% new files (verify={verify})",
                    "ours_s": ours_delta,
                    "ours_module_s": engine_delta,
                    "rsync_s": rsync_delta,
                    "sent": delta_sent,
                },  # fmt: skip
            ]
        for row in rows:
            row["ratio_rsync_over_ours"] = round(row["rsync_s"] / row["ours_s"], 2)
            row["ratio_rsync_over_module"] = round(row["rsync_s"] / row["ours_module_s"], 2)
            row["ours_s"], row["rsync_s"] = round(row["ours_s"], 3), round(row["rsync_s"], 3)
        s3 = s3_bench(work, options.s3_mib, options.s3_endpoint) if options.s3_mib else None
        version = subprocess.run(["rsync", "--version"], capture_output=True, text=True, check=True)
        rsync_version = version.stdout.splitlines()[0]
        report = {
            "peer": rsync_version,
            "tree": {"files": files, "mib": round(total / 1048576)},
            "page_cache_dropped_before_cold_copies": cold,
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "rows": rows,
            "s3": s3,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "filestore_sync.json").write_text(json.dumps(report, indent=2) + "\n")
        lines = [
            "# Filestore sync: odoo_filestore_sync vs rsync -a (local to local, one run)",
            "",
            f"Peer: {rsync_version}. Tree: {files} content-addressed files, {report['tree']['mib']} MiB; "
            f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the end, shared machine); "
            f"page cache dropped before cold copies: {cold}. "
            "Our wall-clock times include Ansible's start-up (an ad-hoc `ansible` run); the module's "
            "own time (its `seconds`) leaves that out. With verify=all ours also hashes every file, "
            "with verify=sent the files it sent; rsync proves nothing.",
            "",
            "| case | ours, wall clock (s) | ours, module (s) | rsync (s) | rsync / ours (wall) "
            "| rsync / ours (module) | files sent |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            lines.append(
                f"| {row['case']} | {row['ours_s']} | {row['ours_module_s']} | {row['rsync_s']} "
                f"| {row['ratio_rsync_over_ours']} | {row['ratio_rsync_over_module']} | {row['sent']} |"
            )
        if s3:
            lines += [
                "",
                "## Upload to S3-compatible storage (destination_s3)",
                "",
                f"Store: the lab's MinIO (built from its Go module, one drive) on 127.0.0.1, TLS. "
                f"Tree: {s3['tree']['files']} files, {s3['tree']['mib']} MiB. No peer runs here "
                "(no `aws s3 sync`); every run lists the prefix and proves each object.",
                "",
                "| case | odoo_filestore_sync (s) | files sent |",
                "|---|---|---|",
            ]
            lines += [f"| {row['case']} | {row['seconds']} | {row['sent']} |" for row in s3["rows"]]
            lines += ["", f"Cold upload throughput: {s3['rows'][0]['mib_per_s']} MiB/s (proof included)."]
        (RESULTS / "filestore_sync.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
