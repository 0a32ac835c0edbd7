"""pgBackRest as the baseline configures it against pg_dump -Fd -j4, and the content-addressed filestore
backup against the same tree uploaded file by file; each to the same store, measured in one run.

On one lab VM (default legacy-vm-1, database acme), with the backup baseline applied (the script runs
discover.yml and baseline.yml first, with consent to the one restart). Everything runs on the VM, with
its CPUs, against the lab's MinIO over TLS, with the backups' own key:

- pgBackRest: a full backup (`pgbackrest --type=full backup`: zstd 3, process-max 2, bundles, AES-256,
  straight to the store), then a restore of it into a scratch instance until it accepts queries
  (`pg_restore_drill`, target immediate, no checks).
- Its peer: `pg_dump -Fd -j4` of the database, its files uploaded one object per file (boto3 on the VM),
  then downloaded again and restored with `pg_restore -j4` into a new database.
- The filestore: a synthetic Odoo filestore on the VM (files named by their SHA-1, sizes like scans and
  images) backed up by `odoo_filestore_backup` (cold, then again with nothing new, then after 1 % new
  files), against the same tree uploaded file by file each time (what a copy without a manifest does).

pgBackRest backs up the whole cluster (the lab's holds this database and `postgres`), pg_dump the one
database; both sizes are reported. Ratios are the peer's time over ours (above 1: ours is faster).

    .venv/bin/python benchmarks/backup.py [--host legacy-vm-1] [--database acme] [--filestore-mib 256]
Writes benchmarks/results/backup.{json,md}.
"""

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
STATE = REPO / "lab" / ".state"
BUCKET = "odoo-backups"
ENDPOINT_FROM_VM = "https://odoo-mig-s3:9000"
CA_ON_VM = "/etc/ssl/certs/ca-certificates.crt"
PEER_DUMP = "benchmark/pg-dump/"
PEER_FILESTORE = "benchmark/filestore-file-by-file/"
OUR_FILESTORE = "benchmark/filestore"
WORK = "/var/lib/postgresql/benchmark"

# Run by python3 on the VM: the store's keys arrive on stdin, never on a command line.
ON_VM_S3 = r"""
import hashlib, json, os, random, sys
import boto3
job = json.load(sys.stdin)
client = boto3.client("s3", endpoint_url=job["endpoint"], region_name="us-east-1",
                      aws_access_key_id=job["access_key"], aws_secret_access_key=job["secret_key"],
                      verify=job["ca"])
moved = 0
if job["action"] == "upload":
    for folder, _dirs, files in os.walk(job["dir"]):
        for name in sorted(files):
            path = os.path.join(folder, name)
            client.upload_file(path, job["bucket"], job["prefix"] + os.path.relpath(path, job["dir"]))
            moved += os.path.getsize(path)
elif job["action"] == "download":
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=job["bucket"], Prefix=job["prefix"]):
        for entry in page.get("Contents", []):
            path = os.path.join(job["dir"], entry["Key"][len(job["prefix"]):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            client.download_file(job["bucket"], entry["Key"], path)
            moved += entry["Size"]
elif job["action"] == "delete":
    pages = client.get_paginator("list_object_versions").paginate(Bucket=job["bucket"], Prefix=job["prefix"])
    for page in pages:
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=job["bucket"], Key=entry["Key"], VersionId=entry["VersionId"])
            moved += 1
elif job["action"] == "generate":
    # Files named by their SHA-1 as Odoo stores them; sizes like scanned documents and images.
    rng = random.Random(job["seed"])
    sizes = [(2, 40), (40, 300), (300, 1500), (1500, 5000)]
    while moved < job["bytes"]:
        low, high = rng.choices(sizes, [40, 35, 20, 5])[0]
        content = os.urandom(rng.randint(low, high) * 1024)
        digest = hashlib.sha1(content).hexdigest()
        os.makedirs(os.path.join(job["dir"], digest[:2]), exist_ok=True)
        with open(os.path.join(job["dir"], digest[:2], digest), "wb") as handle:
            handle.write(content)
        moved += len(content)
print(moved)
"""


def say(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def secret(name):
    return (STATE / "secrets" / name).read_text().strip()


def on_vm(host, *argv, user="postgres", stdin=None, timeout=1800):
    command = ["docker", "exec", *(["-i"] if stdin is not None else []), "-u", user, host, *argv]
    run = subprocess.run(command, input=stdin, capture_output=True, check=False, timeout=timeout)
    if run.returncode != 0:
        sys.exit(f"{' '.join(argv)} on {host} failed: {run.stdout[-2000:]!r} {run.stderr[-2000:]!r}")
    return run.stdout.decode()


def s3_on_vm(host, action, prefix, directory="", **extra):
    job = {
        "action": action,
        "endpoint": ENDPOINT_FROM_VM,
        "ca": CA_ON_VM,
        "bucket": BUCKET,
        "prefix": prefix,
        "dir": directory,
        "access_key": secret("s3-backup-access-key"),
        "secret_key": secret("s3-backup-secret-key"),
        **extra,
    }
    return int(on_vm(host, "python3", "-c", ON_VM_S3, stdin=json.dumps(job).encode()).strip())


def module_on_vm(host, module, args, become_user=None):
    command = [str(Path(sys.executable).with_name("ansible")), "-i", str(REPO / "inventories" / "lab"), host]
    command += ["--become"] + (["--become-user", become_user] if become_user else [])
    command += ["-m", module, "-a", json.dumps(args), "-o"]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, timeout=3600)
    result = json.loads(run.stdout.split("=>", 1)[1]) if "=>" in run.stdout else {}
    if run.returncode != 0 or result.get("failed"):
        sys.exit(f"{module} on {host} failed: {run.stdout[-2000:]} {run.stderr[-2000:]}")
    return result


def playbook(name, *args):
    say(f"ansible-playbook {name}")
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(REPO / "inventories" / "lab"),
            str(REPO / "playbooks" / name),
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if run.returncode != 0:
        sys.exit(f"{name} failed: {run.stdout[-3000:]}")


def timed(action):
    started = time.monotonic()
    value = action()
    return round(time.monotonic() - started, 2), value


def pgbackrest(host):
    stanza = host
    say("pgBackRest: full backup")
    backup_seconds, _ = timed(
        lambda: on_vm(host, "pgbackrest", f"--stanza={stanza}", "--type=full", "backup")
    )
    info = json.loads(on_vm(host, "pgbackrest", f"--stanza={stanza}", "--output=json", "info"))[0]
    newest = info["backup"][-1]
    say("pgBackRest: restore into a scratch instance until it answers")
    result = module_on_vm(
        host,
        "sysgenpro.odoo_migration.pg_restore_drill",
        {"stanza": stanza, "target": "immediate", "amcheck": False},
        become_user="postgres",
    )
    return {
        "backup_seconds": backup_seconds,
        "cluster_bytes": newest["info"]["size"],
        # With block incrementals the repository reports what this backup stored as its delta.
        "stored_bytes": newest["info"]["repository"].get("size", newest["info"]["repository"]["delta"]),
        "restore_seconds": result["restore_seconds"],
        "recovery_seconds": result["recovery_seconds"],
        "restore_total_seconds": round(result["restore_seconds"] + result["recovery_seconds"], 2),
    }


def pg_dump_peer(host, database):
    dump, restored = f"{WORK}/pg-dump", f"{WORK}/pg-dump-restore"
    on_vm(host, "rm", "-rf", dump, restored, user="root")
    on_vm(host, "mkdir", "-p", WORK)
    s3_on_vm(host, "delete", PEER_DUMP)
    say("peer: pg_dump -Fd -j4")
    dump_seconds, _ = timed(lambda: on_vm(host, "pg_dump", "-Fd", "-j4", "-f", dump, database))
    say("peer: upload one object per file")
    upload_seconds, sent = timed(lambda: s3_on_vm(host, "upload", PEER_DUMP, dump))
    say("peer: download and pg_restore -j4")
    download_seconds, _ = timed(lambda: s3_on_vm(host, "download", PEER_DUMP, restored))
    on_vm(host, "dropdb", "--if-exists", "benchmark_restore")
    on_vm(host, "createdb", "benchmark_restore")
    restore_seconds, _ = timed(
        lambda: on_vm(host, "pg_restore", "-j4", "--no-owner", "-d", "benchmark_restore", restored)
    )
    on_vm(host, "dropdb", "benchmark_restore")
    on_vm(host, "rm", "-rf", dump, restored, user="root")
    s3_on_vm(host, "delete", PEER_DUMP)
    return {
        "dump_seconds": dump_seconds,
        "upload_seconds": upload_seconds,
        "backup_seconds": round(dump_seconds + upload_seconds, 2),
        "stored_bytes": sent,
        "download_seconds": download_seconds,
        "pg_restore_seconds": restore_seconds,
        "restore_total_seconds": round(download_seconds + restore_seconds, 2),
    }


def filestore(host, mib):
    tree = f"{WORK}/filestore"
    on_vm(host, "rm", "-rf", tree, user="root")
    on_vm(host, "mkdir", "-p", tree)
    for prefix in (OUR_FILESTORE + "/", PEER_FILESTORE):
        s3_on_vm(host, "delete", prefix)
    say(f"filestore: a synthetic tree of {mib} MiB on the VM")
    total = s3_on_vm(host, "generate", "", tree, bytes=mib * 1024 * 1024, seed=12)
    files = int(on_vm(host, "sh", "-c", f"find {tree} -type f | wc -l").strip())

    def ours():
        return module_on_vm(
            host,
            "sysgenpro.odoo_migration.odoo_filestore_backup",
            {
                "source_path": tree,
                "database": "benchmark",
                "destination_s3": {
                    "endpoint_url": ENDPOINT_FROM_VM,
                    "bucket": BUCKET,
                    "prefix": OUR_FILESTORE,
                    "region": "us-east-1",
                    "access_key": secret("s3-backup-access-key"),
                    "secret_key": secret("s3-backup-secret-key"),
                    "ca_bundle": CA_ON_VM,
                },
            },
        )

    def peer():
        return s3_on_vm(host, "upload", PEER_FILESTORE, tree)

    rows = {}
    for run in ("cold", "nothing new", "1 % new files"):
        if run == "1 % new files":
            s3_on_vm(host, "generate", "", tree, bytes=total // 100, seed=13)
        say(f"filestore, {run}: odoo_filestore_backup")
        our_seconds, our_result = timed(ours)
        say(f"filestore, {run}: file by file")
        peer_seconds, peer_bytes = timed(peer)
        rows[run] = {
            "ours_seconds": our_seconds,
            "ours_uploaded_bytes": our_result["uploaded_bytes"],
            "ours_uploaded_files": our_result["uploaded_files"],
            "peer_seconds": peer_seconds,
            "peer_uploaded_bytes": peer_bytes,
            "ratio": round(peer_seconds / our_seconds, 2),
        }
    on_vm(host, "rm", "-rf", tree, user="root")
    for prefix in (OUR_FILESTORE + "/", PEER_FILESTORE):
        s3_on_vm(host, "delete", prefix)
    return {"files": files, "bytes": total, "runs": rows}


def markdown(result):
    mib = 1024 * 1024
    ours, theirs, files = result["pgbackrest"], result["pg_dump_fd_j4"], result["filestore"]
    database = [
        (
            "backup (s)",
            f"{ours['backup_seconds']}",
            f"{theirs['backup_seconds']} (dump {theirs['dump_seconds']}, upload {theirs['upload_seconds']})",
            f"{result['backup_ratio']}",
        ),
        (
            "stored (MiB)",
            f"{ours['stored_bytes'] / mib:.1f} (whole cluster: {ours['cluster_bytes'] / mib:.0f} MiB)",
            f"{theirs['stored_bytes'] / mib:.1f} (one database)",
            "",
        ),
        (
            "restore until it answers (s)",
            f"{ours['restore_total_seconds']} (files {ours['restore_seconds']}, "
            f"recovery {ours['recovery_seconds']})",
            f"{theirs['restore_total_seconds']} (download {theirs['download_seconds']}, "
            f"pg_restore -j4 {theirs['pg_restore_seconds']})",
            f"{result['restore_ratio']}",
        ),
    ]
    tree = [
        (
            run,
            f"{row['ours_seconds']} ({row['ours_uploaded_files']} files, "
            f"{row['ours_uploaded_bytes'] / mib:.1f} MiB)",
            f"{row['peer_seconds']} ({row['peer_uploaded_bytes'] / mib:.1f} MiB)",
            f"{row['ratio']}",
        )
        for run, row in files["runs"].items()
    ]

    def table(rows):
        return "\n".join("| " + " | ".join(row) + " |" for row in rows)

    size = f"{result['database_bytes'] / mib:.0f} MiB"
    filestore_size = f"{files['files']} files, {files['bytes'] / mib:.0f} MiB"
    return f"""# Backups: pgBackRest as configured against pg_dump -Fd -j4; the filestore against file by file

Measured {result["measured_at"]} on {result["host"]} (2 CPUs shared with the lab),
{result["pgbackrest_version"]}, PostgreSQL {result["postgresql_version"]};
database `{result["database"]}` {size}.
Everything runs on the VM against the lab's MinIO over TLS (same bucket, same key). One run.

| database | pgBackRest full (zstd 3, 2 processes, AES-256) | pg_dump -Fd -j4 + upload | peer / ours |
|---|---|---|---|
{table(database)}

Above 1, ours is faster. pg_dump's copy is unencrypted and is one database at one instant, with no
point-in-time recovery; pgBackRest's is encrypted client-side and is the whole cluster, with its WAL
for any point since.

| filestore ({filestore_size}) | odoo_filestore_backup (s) | file by file (s) | peer / ours |
|---|---|---|---|
{table(tree)}

The file-by-file copy has no manifest, so each run sends the whole tree again; odoo_filestore_backup
sends only objects the store does not hold, proves each, and writes a manifest when the tree changed.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="legacy-vm-1")
    parser.add_argument("--database", default="acme")
    parser.add_argument("--filestore-mib", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        playbook("discover.yml", "--limit", args.host, "-e", f"odoo_migration_state_dir={state}")
        playbook(
            "baseline.yml",
            "--limit",
            args.host,
            "-e",
            f"odoo_migration_state_dir={state}",
            "-e",
            "odoo_migration_allow_restart=true",
        )
    database_bytes = int(
        on_vm(args.host, "psql", "-XAt", "-c", f"SELECT pg_database_size('{args.database}')")
    )
    ours = pgbackrest(args.host)
    theirs = pg_dump_peer(args.host, args.database)
    files = filestore(args.host, args.filestore_mib)
    result = {
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": args.host,
        "database": args.database,
        "database_bytes": database_bytes,
        "pgbackrest": ours,
        "pg_dump_fd_j4": theirs,
        "backup_ratio": round(theirs["backup_seconds"] / ours["backup_seconds"], 2),
        "restore_ratio": round(theirs["restore_total_seconds"] / ours["restore_total_seconds"], 2),
        "filestore": files,
        "pgbackrest_version": on_vm(args.host, "pgbackrest", "version").strip(),
        "postgresql_version": on_vm(args.host, "psql", "-XAt", "-c", "SHOW server_version").strip(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backup.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "backup.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
