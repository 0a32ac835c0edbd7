"""Give the lab's MinIO its buckets and one least-privilege key per purpose, idempotently.

usage: object_store_setup.py ENDPOINT CA_FILE SECRETS_DIR [--empty BUCKET]
With --empty, every version of every object in BUCKET is removed instead (the lab's reset of the
backup repositories, whose passphrases go with the wave's other secrets).
ENDPOINT is host:port (TLS, verified with CA_FILE). The root credentials are read from
SECRETS_DIR/minio-root-user and minio-root-password; each purpose's key is SECRETS_DIR/
s3-<purpose>-access-key and s3-<purpose>-secret-key (the secret generated once, mode 0600).
Prints one JSON object: {"changed": bool, "created": [...]}. No secret is ever printed.
"""

import json
import os
import secrets
import string
import sys

import boto3
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError
from minio.credentials import StaticProvider
from minio.error import MinioAdminException
from minio.minioadmin import MinioAdmin

REGION = "us-east-1"
# purpose -> (the user's access key, the buckets it works in, versioning on each bucket).
PURPOSES = {
    # pgBackRest's repositories: it writes, reads and expires its own files, nothing else.
    "backup": ("odoo-backup", ["odoo-backups"]),
    # The filestore copies (odoo_filestore_sync); tests make their own odoo-filestore-* buckets.
    "filestore": ("odoo-filestore", ["odoo-filestore"]),
}
BUCKET_ACTIONS = [
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
]
OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]


def read(path):
    with open(path) as handle:
        return handle.read().strip()


def secret_file(path, length=40):
    """The secret kept at path, generated first when it is not there yet."""
    if not os.path.exists(path):
        alphabet = string.ascii_letters + string.digits
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(secrets.choice(alphabet) for _ in range(length)))
    return read(path)


def policy(buckets):
    patterns = [name + suffix for name in buckets for suffix in ("", "-*")]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": BUCKET_ACTIONS,
                "Resource": ["arn:aws:s3:::" + p for p in patterns],
            },
            {
                "Effect": "Allow",
                "Action": OBJECT_ACTIONS,
                "Resource": [f"arn:aws:s3:::{p}/*" for p in patterns],
            },
        ],
    }


def s3_client(endpoint, ca_file, access_key, secret_key):
    return boto3.client(
        "s3",
        endpoint_url="https://" + endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        verify=ca_file,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def normalized(document):
    """A policy as a comparable value: the server returns its lists in an order of its own."""

    def listed(value):
        return tuple(sorted([value] if isinstance(value, str) else value))

    return sorted(
        (statement["Effect"], listed(statement["Action"]), listed(statement["Resource"]))
        for statement in document.get("Statement", [])
    )


def main(endpoint, ca_file, secrets_dir):
    root_user = read(os.path.join(secrets_dir, "minio-root-user"))
    root_password = read(os.path.join(secrets_dir, "minio-root-password"))
    admin = MinioAdmin(
        endpoint=endpoint,
        credentials=StaticProvider(root_user, root_password),
        secure=True,
        http_client=urllib3.PoolManager(ca_certs=ca_file, cert_reqs="CERT_REQUIRED"),
    )
    s3 = s3_client(endpoint, ca_file, root_user, root_password)
    created = []
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    for purpose, (user, buckets) in sorted(PURPOSES.items()):
        for bucket in buckets:
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)
                created.append("bucket " + bucket)
            if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
                created.append("versioning on " + bucket)
        access_path = os.path.join(secrets_dir, f"s3-{purpose}-access-key")
        if not os.path.exists(access_path) or read(access_path) != user:
            fd = os.open(access_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(user)
        secret = secret_file(os.path.join(secrets_dir, f"s3-{purpose}-secret-key"))
        policy_name = "odoo-migration-" + purpose
        wanted = policy(buckets)
        try:
            current = json.loads(admin.policy_info(policy_name))
            current = current.get("Policy", current)
        except MinioAdminException:
            current = None
        if current is None or normalized(current) != normalized(wanted):
            admin.policy_add(policy_name, policy=wanted)
            created.append("policy " + policy_name)
        try:
            info = json.loads(admin.user_info(user))
        except MinioAdminException:
            info = None
        if info is None or not key_works(endpoint, ca_file, user, secret, buckets[0]):
            admin.user_add(user, secret)
            created.append("user " + user)
            info = json.loads(admin.user_info(user))
        if policy_name not in (info.get("policyName") or "").split(","):
            admin.attach_policy([policy_name], user=user)
            created.append("{} may use {}".format(user, ", ".join(buckets)))
    print(json.dumps({"changed": bool(created), "created": created}))


def key_works(endpoint, ca_file, user, secret, bucket):
    """The user's key, as kept in the secrets directory, signs requests the store accepts."""
    client = s3_client(endpoint, ca_file, user, secret)
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except ClientError:
        return False
    return True


def empty(endpoint, ca_file, secrets_dir, bucket):
    s3 = s3_client(
        endpoint,
        ca_file,
        read(os.path.join(secrets_dir, "minio-root-user")),
        read(os.path.join(secrets_dir, "minio-root-password")),
    )
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
            removed += 1
    print(json.dumps({"changed": removed > 0, "removed": removed}))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[4] == "--empty":
        empty(*sys.argv[1:4], sys.argv[5])
    elif len(sys.argv) == 4:
        main(*sys.argv[1:])
    else:
        sys.exit(__doc__)
