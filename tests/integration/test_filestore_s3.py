"""odoo_filestore_sync sends a real filestore copy to the lab's object store (MinIO over TLS) and proves
every object. The module signs with the filestore's own key, which may use only odoo-filestore*
buckets; the tests make and empty their buckets with the store's root key."""

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import LEGACY_VMS, REPO, STATE_DIR
from test_filestore_sync import run_module, sync

ENDPOINT = "https://127.0.0.1:9000"
CA_FILE = STATE_DIR / "tls" / "lab-ca.crt"
HOST = sorted(LEGACY_VMS)[0]


def secret(name):
    return (STATE_DIR / "secrets" / name).read_text().strip()


def s3_client(access_key, secret_key, **options):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        verify=str(CA_FILE),
        **options,
    )


@pytest.fixture(scope="module")
def client():
    """The store's root: makes, reads, corrupts and removes what the tests need."""
    return s3_client(secret("minio-root-user"), secret("minio-root-password"))


@pytest.fixture
def bucket(client):
    name = f"odoo-filestore-test-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])
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
        "access_key": secret("s3-filestore-access-key"),
        "secret_key": secret("s3-filestore-secret-key"),
        "ca_bundle": str(CA_FILE),
    }
    spec.update(options)
    return {"source_path": str(source), "destination_s3": spec}


def keys(client, bucket):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {entry["Key"]: entry["Size"] for page in pages for entry in page.get("Contents", [])}


def test_the_lab_store_answers_over_tls_only_with_each_purposes_key_on_its_own_buckets(client):
    for purpose in ("backup", "filestore"):
        mode = (STATE_DIR / "secrets" / f"s3-{purpose}-secret-key").stat().st_mode & 0o777
        assert mode == 0o600 and len(secret(f"s3-{purpose}-secret-key")) == 40
    names = {entry["Name"] for entry in client.list_buckets()["Buckets"]}
    assert {"odoo-backups", "odoo-filestore"} <= names
    for name in ("odoo-backups", "odoo-filestore"):
        assert client.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    filestore = s3_client(secret("s3-filestore-access-key"), secret("s3-filestore-secret-key"))
    filestore.put_object(Bucket="odoo-filestore", Key="probe/ok", Body=b"ok")
    with pytest.raises(ClientError, match="AccessDenied"):
        filestore.list_objects_v2(Bucket="odoo-backups")
    with pytest.raises(ClientError, match="AccessDenied"):
        filestore.create_bucket(Bucket=f"odoo-filestore-{uuid.uuid4().hex[:8]}")
    backup = s3_client(secret("s3-backup-access-key"), secret("s3-backup-secret-key"))
    with pytest.raises(ClientError, match="AccessDenied"):
        backup.get_object(Bucket="odoo-filestore", Key="probe/ok")
    # Plain HTTP is refused (Go's TLS server answers 400 to it), and so is a client that does not
    # trust the lab CA.
    with pytest.raises(ClientError, match=r"\(400\).*Bad Request"):
        boto3.client(
            "s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
            aws_access_key_id="x", aws_secret_access_key="y",
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=5),
        ).list_buckets()  # fmt: skip
    with pytest.raises(Exception, match="(?i)certificate verify failed"):
        boto3.client(
            "s3", endpoint_url=ENDPOINT, region_name="us-east-1",
            aws_access_key_id="x", aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}),
        ).list_buckets()  # fmt: skip


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
    # The store keeps the SHA-1 the upload carried: the proof is one HEAD per object.
    assert sent["verified_by"] == {"checksum": files, "content": 0}
    stored = keys(client, bucket)
    files_here = [path for path in source.rglob("*") if path.is_file()]
    assert stored == {
        f"filestore/acme/{path.relative_to(source)}": path.stat().st_size for path in files_here
    }
    assert secret("s3-filestore-secret-key") not in json.dumps(sent)

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
    # A rewrite with the right SHA-1 claimed for wrong bytes is refused by the store (as by AWS S3);
    # so is a claim the module would take for proof. Wrong bytes without a claim are read back.
    claimed = base64.b64encode(bytes.fromhex(second.rsplit("/", 1)[1])).decode()
    with pytest.raises(ClientError, match="(?i)digest|checksum"):
        client.put_object(
            Bucket=bucket,
            Key=second,
            Body=b"\1" * sizes[second],
            ChecksumAlgorithm="SHA1",
            ChecksumSHA1=claimed,
        )
    client.put_object(Bucket=bucket, Key=second, Body=b"\1" * sizes[second])
    absent = "00/" + "0" * 40
    # The proof reads back what keeps no SHA-1, finds both, sends them again and proves them; the
    # attachment without a file still fails the run.
    by_checksum = run_module(dict(args, store_fnames=store_fnames + [absent]))
    assert by_checksum["failed"] is True and "not a faithful copy" in by_checksum["msg"]
    assert by_checksum["replaced_corrupt_files"] == sorted([name(first), name(second)])
    assert by_checksum["corrupt_files"] == [] and by_checksum["missing_attachments"] == [absent]
    for key in (first, second):
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == (source / name(key)).read_bytes()
    # The content proof reads every object back: all faithful now, nothing to send.
    by_content = run_module(s3_args(source, bucket, proof="content"))
    assert by_content["verified_by"] == {"checksum": 0, "content": files}
    assert by_content["replaced_corrupt_files"] == [] and by_content["corrupt_files"] == []
    assert not by_content.get("failed") and by_content["changed"] is False


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
        json.dumps(s3_args(source, "odoo-filestore-no-such-bucket")),
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode != 0 and "NoSuchBucket" in run.stdout
    assert secret("s3-filestore-secret-key") not in run.stdout + run.stderr
