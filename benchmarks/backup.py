"""pgBackRest as the baseline configures it against pg_dump -Fd -j4, to the same store, measured in one run.

On one lab VM (default legacy-vm-1, database acme), with the backup baseline applied (the script runs
discover.yml and baseline.yml first, with consent to the one restart):

- pgBackRest: a full backup (`pgbackrest --type=full backup` on the VM: zstd 3, process-max 2,
  bundles, AES-256, straight to the lab's MinIO over TLS), then a restore of it into a scratch
  instance until it accepts queries (`pg_restore_drill`, target immediate, no checks).
- The peer: `pg_dump -Fd -j4` of the database on the VM, its files uploaded to the same bucket with
  the backups' own key (one object per file), then downloaded again and restored with
  `pg_restore -j4` into a new database on the same VM.

Both run on the same VM, with the same CPUs, against the same store. pgBackRest backs up the whole
cluster (the lab's holds this database and `postgres`), pg_dump the one database; both sizes are
reported. Ratios are the peer's time over ours (above 1: ours is faster).

    .venv/bin/python benchmarks/backup.py [--host legacy-vm-1] [--database acme]
Writes benchmarks/results/backup.{json,md}.
"""

import argparse
import datetime
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
STATE = REPO / "lab" / ".state"
BUCKET = "odoo-backups"
PEER_PREFIX = "benchmark-pg-dump/"
sys.path.insert(0, str(REPO / "tests" / "integration"))


def secret(name):
    return (STATE / "secrets" / name).read_text().strip()


def store():
    return boto3.client(
        "s3",
        endpoint_url="https://127.0.0.1:9000",
        region_name="us-east-1",
        aws_access_key_id=secret("s3-backup-access-key"),
        aws_secret_access_key=secret("s3-backup-secret-key"),
        verify=str(STATE / "tls" / "lab-ca.crt"),
    )


def on_vm(host, *argv, user="postgres", stdin=None, capture=True):
    command = ["docker", "exec", "-i" if stdin is not None else "-t", "-u", user, host, *argv]
    command = [part for part in command if part != "-t"]
    run = subprocess.run(command, input=stdin, capture_output=capture, check=False)
    if run.returncode != 0:
        sys.exit(f"{' '.join(argv)} on {host} failed: {run.stdout[-2000:]!r} {run.stderr[-2000:]!r}")
    return run.stdout


def playbook(name, *args):
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
    )
    if run.returncode != 0:
        sys.exit(f"{name} failed: {run.stdout[-3000:]}")


def timed(action):
    started = time.monotonic()
    value = action()
    return time.monotonic() - started, value


def pgbackrest(host):
    stanza = host
    backup_seconds, _ = timed(
        lambda: on_vm(host, "pgbackrest", f"--stanza={stanza}", "--type=full", "backup")
    )
    info = json.loads(on_vm(host, "pgbackrest", f"--stanza={stanza}", "--output=json", "info"))[0]
    newest = info["backup"][-1]
    drill = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible")),
            "-i",
            str(REPO / "inventories" / "lab"),
            host,
            "--become",
            "--become-user",
            "postgres",
            "-m",
            "sysgenpro.odoo_migration.pg_restore_drill",
            "-a",
            json.dumps({"stanza": stanza, "target": "immediate", "amcheck": False}),
            "-o",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    result = json.loads(drill.stdout.split("=>", 1)[1]) if "=>" in drill.stdout else {}
    if not result.get("passed"):
        sys.exit(f"the drill failed: {drill.stdout[-2000:]}")
    return {
        "backup_seconds": round(backup_seconds, 2),
        "cluster_bytes": newest["info"]["size"],
        "stored_bytes": newest["info"]["repository"]["size"],
        "restore_seconds": result["restore_seconds"],
        "recovery_seconds": result["recovery_seconds"],
        "restore_total_seconds": round(result["restore_seconds"] + result["recovery_seconds"], 2),
    }


def peer(host, database):
    client = store()
    workdir = "/var/lib/postgresql/benchmark-pg-dump"
    on_vm(host, "rm", "-rf", workdir, workdir + "-restore", user="root")
    dump_seconds, _ = timed(lambda: on_vm(host, "pg_dump", "-Fd", "-j4", "-f", workdir, database))

    def upload():
        stream = on_vm(host, "tar", "-C", workdir, "-cf", "-", ".")
        sent = 0
        with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as archive:
            for member in archive.getmembers():
                if member.isfile():
                    client.upload_fileobj(
                        archive.extractfile(member), BUCKET, PEER_PREFIX + member.name.lstrip("./")
                    )
                    sent += member.size
        return sent

    upload_seconds, sent = timed(upload)

    def download():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:") as archive:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PEER_PREFIX):
                for entry in page.get("Contents", []):
                    body = client.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
                    info = tarfile.TarInfo(entry["Key"][len(PEER_PREFIX) :])
                    info.size = len(body)
                    archive.addfile(info, io.BytesIO(body))
        on_vm(host, "mkdir", "-p", workdir + "-restore")
        on_vm(host, "tar", "-C", workdir + "-restore", "-xf", "-", stdin=buffer.getvalue())

    download_seconds, _ = timed(download)
    on_vm(host, "dropdb", "--if-exists", "benchmark_restore")
    on_vm(host, "createdb", "benchmark_restore")
    restore_seconds, _ = timed(
        lambda: on_vm(
            host, "pg_restore", "-j4", "--no-owner", "-d", "benchmark_restore", workdir + "-restore"
        )
    )
    on_vm(host, "dropdb", "benchmark_restore")
    on_vm(host, "rm", "-rf", workdir, workdir + "-restore", user="root")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PEER_PREFIX):
        for entry in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=entry["Key"])
    return {
        "dump_seconds": round(dump_seconds, 2),
        "upload_seconds": round(upload_seconds, 2),
        "backup_seconds": round(dump_seconds + upload_seconds, 2),
        "stored_bytes": sent,
        "download_seconds": round(download_seconds, 2),
        "pg_restore_seconds": round(restore_seconds, 2),
        "restore_total_seconds": round(download_seconds + restore_seconds, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="legacy-vm-1")
    parser.add_argument("--database", default="acme")
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
    theirs = peer(args.host, args.database)
    result = {
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": args.host,
        "database": args.database,
        "database_bytes": database_bytes,
        "pgbackrest": ours,
        "pg_dump_fd_j4": theirs,
        "backup_ratio": round(theirs["backup_seconds"] / ours["backup_seconds"], 2),
        "restore_ratio": round(theirs["restore_total_seconds"] / ours["restore_total_seconds"], 2),
        "pgbackrest_version": on_vm(args.host, "pgbackrest", "version").decode().strip(),
        "postgresql_version": on_vm(args.host, "psql", "-XAt", "-c", "SHOW server_version").decode().strip(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backup.json").write_text(json.dumps(result, indent=2) + "\n")
    mib = 1024 * 1024
    rows = [
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
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    (RESULTS / "backup.md").write_text(
        f"""# Backup and restore: pgBackRest (as configured) against pg_dump -Fd -j4

Measured {result["measured_at"]} on {args.host} (2 CPUs shared with the lab), {result["pgbackrest_version"]},
PostgreSQL {result["postgresql_version"]}; database `{args.database}` {database_bytes / mib:.0f} MiB;
store: the lab's MinIO over TLS, same bucket, same machine. One run.

| | pgBackRest full (zstd 3, process-max 2, bundles, AES-256) | pg_dump -Fd -j4 + upload | peer / ours |
|---|---|---|---|
{table}

Above 1, pgBackRest is faster. pg_dump's copy is unencrypted and is one database at one instant, with
no point-in-time recovery; pgBackRest's is encrypted client-side and is the whole cluster, with its
WAL for any point since.

The filestore's backup against the same tree uploaded file by file is not measured yet: the
content-addressed filestore backup is the next part of issue 12.
"""
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
