# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send an Odoo filestore to S3-compatible object storage and prove every object.

The same content-addressed reasoning as `_filestore`: a key is `<prefix>/<sha1[:2]>/<sha1>`,
the delta is the set of names the bucket lacks (or holds with another size), and an object
is intact when the SHA-1 of its content equals its name.

Uploads carry the SHA-1 that the name promises (`ChecksumSHA1`): a store that checks
checksums (AWS S3 and most compatible stores) refuses an upload whose bytes do not match,
and keeps the checksum, which `HeadObject` with `ChecksumMode=ENABLED` gives back. Proof
is either that stored checksum (`checksum`, one HEAD per object, no data read) or the
object read back and hashed (`content`). An object without a stored full-object SHA-1
(uploaded by another tool, or in several parts) is always read back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import os
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files.filestore import (
    CONTENT_NAME,
    GC_DIR,
)

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
    ERRORS = (BotoCoreError, ClientError)
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()
    ERRORS = ()

# A single PUT takes up to 5 GiB; one multipart upload would not keep a full-object SHA-1.
MAX_SINGLE_PUT = 5 * 1024**3
DELETE_BATCH = 1000


class S3Error(Exception):
    """A store error, told without credentials."""


def make_client(spec, jobs=4):
    """A boto3 S3 client from the module's destination_s3 options."""
    verify = spec.get("ca_bundle") or bool(spec.get("validate_certs", True))
    config = Config(
        max_pool_connections=max(10, jobs * 2),
        retries={"max_attempts": 5, "mode": "standard"},
        # Path-style addressing works on every compatible store; virtual hosts need DNS.
        s3={"addressing_style": spec.get("addressing_style") or "path"},
        # A read-back is hashed here and judged against the name; botocore's own check of the
        # stored checksum would only turn a corrupt object into an exception.
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=spec.get("endpoint_url"),
        region_name=spec.get("region"),
        aws_access_key_id=spec.get("access_key"),
        aws_secret_access_key=spec.get("secret_key"),
        aws_session_token=spec.get("session_token"),
        verify=verify,
        config=config,
    )


def describe(error):
    """A short message from a botocore error (never the request's credentials)."""
    response = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    message = response.get("Error", {}).get("Message") or str(error)
    return "%s: %s" % (code, message) if code else "%s: %s" % (type(error).__name__, message)


# What a store answers for an object that is not there (HEAD has no body, so only the status).
MISSING_CODES = ("404", "NoSuchKey", "NotFound")


def error_code(error):
    """The store's error code of a botocore error, or None."""
    return ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")


def key_prefix(prefix):
    """`a/b` or `/a/b/` -> `a/b/`; empty stays empty (the bucket's root)."""
    prefix = (prefix or "").strip("/")
    return prefix + "/" if prefix else ""


def sha1_base64(hexdigest):
    """The x-amz-checksum-sha1 form (base64 of the 20 bytes) of a hex SHA-1."""
    return base64.b64encode(binascii.unhexlify(hexdigest)).decode("ascii")


def sha1_hex(checksum):
    """Hex SHA-1 from a stored ChecksumSHA1, or None for a composite (multipart) checksum."""
    if not checksum or "-" in checksum:
        return None
    try:
        raw = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        return None
    return binascii.hexlify(raw).decode("ascii") if len(raw) == 20 else None


def listing(client, bucket, prefix):
    """{relative path: size} of the objects under prefix; GC markers and folder markers left out."""
    base = key_prefix(prefix)
    files = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for entry in page.get("Contents", []):
                path = entry["Key"][len(base) :]
                if not path or path.endswith("/") or path.split("/", 1)[0] == GC_DIR:
                    continue
                files[path] = entry["Size"]
    except ERRORS as error:
        raise S3Error("cannot list s3://%s/%s: %s" % (bucket, base, describe(error)))
    return files


def _pool(jobs, function, items):
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(function, items))


def upload(client, bucket, prefix, root, paths, jobs=4):
    """PUT each file under prefix, in parallel, each with the SHA-1 it must have; raises S3Error."""
    base = key_prefix(prefix)

    def put(path):
        arguments = dict(Bucket=bucket, Key=base + path, ChecksumAlgorithm="SHA1")
        if CONTENT_NAME.match(path):
            # The name is the SHA-1: a store that checks checksums refuses wrong bytes (BadDigest).
            arguments["ChecksumSHA1"] = sha1_base64(path.split("/")[1])
        try:
            with open("%s/%s" % (root, path), "rb") as body:
                if os.fstat(body.fileno()).st_size > MAX_SINGLE_PUT:
                    return "%s: larger than one PUT (5 GiB); multipart uploads are not supported" % path
                client.put_object(Body=body, **arguments)
        except ERRORS as error:
            return "%s: %s" % (path, describe(error))
        except (IOError, OSError) as error:
            return "%s: %s" % (path, error)
        return None

    failures = [failure for failure in _pool(jobs, put, paths) if failure]
    if failures:
        raise S3Error(
            "%d of %d upload(s) to s3://%s/%s failed, first: %s; the objects already sent are kept, "
            "re-run to resume" % (len(failures), len(paths), bucket, base, failures[0])
        )


def object_sha1(client, bucket, key, proof):
    """(hex SHA-1 of the object, how it was learnt): the stored checksum, else the content read back."""
    if proof == "checksum":
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        stored = sha1_hex(head.get("ChecksumSHA1"))
        if stored:
            return stored, "checksum"
    digest = hashlib.sha1()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest(), "content"


def verify(client, bucket, prefix, paths, proof="checksum", jobs=4):
    """(checked, corrupt paths, {how: count}) for the content-addressed paths among paths."""
    base = key_prefix(prefix)
    checked = [path for path in paths if CONTENT_NAME.match(path)]

    def check(path):
        try:
            digest, how = object_sha1(client, bucket, base + path, proof)
        except ERRORS as error:
            if error_code(error) in MISSING_CODES:
                return path, "missing"
            # Access denied, a timeout, a server error: the store's fault, not the object's.
            raise S3Error("cannot read s3://%s/%s%s to prove it: %s" % (bucket, base, path, describe(error)))
        return (None if digest == path.split("/")[1] else path), how

    outcomes = _pool(jobs, check, checked)
    by = {"checksum": 0, "content": 0}
    for _path, how in outcomes:
        if how in by:
            by[how] += 1
    return len(checked), sorted(path for path, _how in outcomes if path), by


def delete(client, bucket, prefix, paths):
    """Remove the objects of paths under prefix; raises S3Error naming the first failure."""
    base = key_prefix(prefix)
    for start in range(0, len(paths), DELETE_BATCH):
        batch = [{"Key": base + path} for path in paths[start : start + DELETE_BATCH]]
        try:
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        except ERRORS as error:
            raise S3Error("cannot remove extra objects from s3://%s/%s: %s" % (bucket, base, describe(error)))
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise S3Error(
                "cannot remove %s: %s" % (first.get("Key"), first.get("Message") or first.get("Code"))
            )


def argument_spec():
    """The suboptions of a module's destination_s3 (doc fragment sysgenpro.odoo_migration.object_storage)."""
    return dict(
        endpoint_url=dict(type="str"),
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default=""),
        region=dict(type="str"),
        access_key=dict(type="str", no_log=True),
        secret_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
        ca_bundle=dict(type="path"),
        addressing_style=dict(type="str", choices=["path", "virtual"], default="path"),
        proof=dict(type="str", choices=["checksum", "content"], default="checksum"),
    )
