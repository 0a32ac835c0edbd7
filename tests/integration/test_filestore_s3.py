"""odoo_filestore_sync sends a real filestore copy to the lab's S3 store (moto) and proves every object."""

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from conftest import LEGACY_VMS, REPO, STATE_DIR
from test_filestore_sync import run_module, sync

ENDPOINT = "http://127.0.0.1:9000"
HOST = sorted(LEGACY_VMS)[0]


def secret(name):
    return (STATE_DIR / "secrets" / name).read_text().strip()


@pytest.fixture(scope="module")
def client():
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=secret("s3-access-key"),
        aws_secret_access_key=secret("s3-secret-key"),
    )


@pytest.fixture
def bucket(client):
    name = f"odoo-mig-test-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for entry in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=entry["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def filestore_copy(tmp_path_factory):
    """A real filestore, pulled from the first VM, and its database's store_fnames."""
    database = LEGACY_VMS[HOST]["lab_odoo_databases"][0]
    destination = tmp_path_factory.mktemp("s3-source") / database
    result, store_fnames = sync(HOST, database, destination)
    assert not result.get("failed"), result.get("msg")
    return destination, store_fnames, result["source_files"]


def s3_args(source, bucket, **options):
    spec = {
        "endpoint_url": ENDPOINT,
        "bucket": bucket,
        "prefix": "filestore/acme",
        "region": "us-east-1",
        "access_key": secret("s3-access-key"),
        "secret_key": secret("s3-secret-key"),
    }
    spec.update(options)
    return {"source_path": str(source), "destination_s3": spec}


def keys(client, bucket):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {entry["Key"]: entry["Size"] for page in pages for entry in page.get("Contents", [])}


def test_the_lab_store_answers_on_localhost_with_the_generated_keys(client):
    mode = (STATE_DIR / "secrets" / "s3-secret-key").stat().st_mode & 0o777
    assert mode == 0o600 and len(secret("s3-secret-key")) == 40
    assert "Buckets" in client.list_buckets()


def test_upload_is_incremental_proven_and_keeps_the_secret_out(client, bucket, filestore_copy):
    source, store_fnames, files = filestore_copy
    args = dict(s3_args(source, bucket), store_fnames=store_fnames, jobs=8)

    planned = run_module(args, check=True)
    assert (planned["changed"], planned["sent_files"], planned["destination_files"]) == (True, files, 0)
    assert len(planned["missing_attachments"]) == len(set(store_fnames))
    assert keys(client, bucket) == {}

    sent = run_module(args)
    assert not sent.get("failed"), sent.get("msg")
    assert sent["changed"] is True and sent["sent_files"] == sent["verified_files"] == files
    assert sent["destination_files"] == files and sent["missing_attachments"] == []
    # moto keeps the SHA-1 the upload carried: the proof is one HEAD per object.
    assert sent["verified_by"] == {"checksum": files, "content": 0}
    stored = keys(client, bucket)
    files_here = [path for path in source.rglob("*") if path.is_file()]
    assert stored == {
        f"filestore/acme/{path.relative_to(source)}": path.stat().st_size for path in files_here
    }
    assert secret("s3-secret-key") not in json.dumps(sent)

    again = run_module(args)
    assert (again["changed"], again["sent_files"], again["verified_files"]) == (False, 0, files)

    lost = sorted(stored)[0]
    client.delete_object(Bucket=bucket, Key=lost)
    extra = "filestore/acme/stray.bin"
    client.put_object(Bucket=bucket, Key=extra, Body=b"stray")
    resent = run_module(dict(args, verify="sent"))
    assert (resent["changed"], resent["sent_files"], resent["verified_files"]) == (True, 1, 1)
    assert resent["extra_files"] == ["stray.bin"] and extra in keys(client, bucket)


def name(key):
    """The filestore path of an object key."""
    return key[len("filestore/acme/") :]


def test_corrupt_objects_are_sent_again_and_missing_attachments_named(client, bucket, filestore_copy):
    source, store_fnames, files = filestore_copy
    args = dict(s3_args(source, bucket), store_fnames=store_fnames)
    assert not run_module(args).get("failed")
    sizes = keys(client, bucket)
    first, second = sorted(sizes)[:2]
    # Rewritten by another tool with bytes of the same size: no SHA-1 kept, so it is read back.
    client.put_object(Bucket=bucket, Key=first, Body=b"\0" * sizes[first])
    # Rewritten with the right SHA-1 claimed for wrong bytes: moto keeps the claim unchecked
    # (AWS S3 would answer BadDigest), so only reading back finds it.
    claimed = base64.b64encode(bytes.fromhex(second.rsplit("/", 1)[1])).decode()
    client.put_object(
        Bucket=bucket, Key=second, Body=b"\1" * sizes[second], ChecksumAlgorithm="SHA1", ChecksumSHA1=claimed
    )
    absent = "00/" + "0" * 40
    # The proof by stored checksum finds the first, sends it again and proves it; the attachment
    # without a file still fails the run.
    by_checksum = run_module(dict(args, store_fnames=store_fnames + [absent]))
    assert by_checksum["failed"] is True and "not a faithful copy" in by_checksum["msg"]
    assert by_checksum["replaced_corrupt_files"] == [name(first)] and by_checksum["corrupt_files"] == []
    assert by_checksum["missing_attachments"] == [absent]
    assert client.get_object(Bucket=bucket, Key=first)["Body"].read() == (source / name(first)).read_bytes()
    # Only reading back finds the second (its claimed SHA-1 is right); it is mended the same way.
    by_content = run_module(s3_args(source, bucket, proof="content"))
    assert by_content["verified_by"] == {"checksum": 0, "content": files}
    assert by_content["replaced_corrupt_files"] == [name(second)] and by_content["corrupt_files"] == []
    assert not by_content.get("failed") and by_content["changed"] is True
    assert client.get_object(Bucket=bucket, Key=second)["Body"].read() == (source / name(second)).read_bytes()


def test_a_missing_bucket_fails_clearly_without_the_secret(filestore_copy):
    source, _names, _files = filestore_copy
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    command = [
        str(Path(sys.executable).with_name("ansible")),
        "lab-docker-host",
        "-vvv",
        "-m",
        "sysgenpro.odoo_migration.odoo_filestore_sync",
        "-a",
        json.dumps(s3_args(source, "odoo-mig-no-such-bucket")),
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode != 0 and "NoSuchBucket" in run.stdout
    assert secret("s3-secret-key") not in run.stdout + run.stderr
