# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filestore's backups on S3-compatible storage, content-addressed, private.

Layout under the instance's prefix:

    objects/<sha1[:2]>/<sha1>                   every file once, its key the SHA-1 that names it
    manifests/<database>/<YYYYMMDDTHHMMSSZ>.json   one per run: exactly which objects make that run

Odoo's filestore names each file by its SHA-1 and never rewrites one, so a run uploads only the
names the store lacks. A manifest pins a run's filestore; retention keeps the newest manifests of
each database and deletes an object only when no kept manifest (of any database of the instance)
names it and it is older than a grace period, so that a run still uploading is never robbed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import filestore as _filestore
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import object_storage as _s3

OBJECTS = "objects"
MANIFESTS = "manifests"
MANIFEST_FORMAT = 1
_STAMP = "%Y%m%dT%H%M%SZ"


def manifest_name(moment):
    return moment.strftime(_STAMP) + ".json"


def manifest_time(name):
    return datetime.datetime.strptime(name[: -len(".json")], _STAMP).replace(tzinfo=datetime.timezone.utc)


def build_manifest(database, moment, files):
    return {
        "format": MANIFEST_FORMAT,
        "database": database,
        "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": len(files),
        "bytes": sum(files.values()),
        "objects": dict(sorted(files.items())),
    }


def list_manifests(client, bucket, prefix):
    """{database: [manifest name, oldest first]} under the instance's prefix."""
    base = _s3.key_prefix(prefix) + MANIFESTS + "/"
    found = {}
    for path in _s3.listing(client, bucket, base[:-1]):
        database, _sep, name = path.partition("/")
        if name.endswith(".json") and "/" not in name:
            found.setdefault(database, []).append(name)
    return {database: sorted(names) for database, names in found.items()}


def read_manifest(client, bucket, prefix, database, name):
    key = "%s%s/%s/%s" % (_s3.key_prefix(prefix), MANIFESTS, database, name)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except _s3.ERRORS as error:
        raise _s3.S3Error("cannot read the manifest s3://%s/%s: %s" % (bucket, key, _s3.describe(error)))
    return json.loads(body.decode("utf-8"))


def write_manifest(client, bucket, prefix, manifest, name):
    key = "%s%s/%s/%s" % (_s3.key_prefix(prefix), MANIFESTS, manifest["database"], name)
    try:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(manifest, sort_keys=True).encode("utf-8"),
            ContentType="application/json",
        )
    except _s3.ERRORS as error:
        raise _s3.S3Error("cannot write the manifest s3://%s/%s: %s" % (bucket, key, _s3.describe(error)))
    return key


def object_ages(client, bucket, prefix, now):
    """{path under objects/: age in hours} of every object the instance keeps."""
    base = _s3.key_prefix(prefix) + OBJECTS + "/"
    ages = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for entry in page.get("Contents", []):
                ages[entry["Key"][len(base) :]] = (now - entry["LastModified"]).total_seconds() / 3600
    except _s3.ERRORS as error:
        raise _s3.S3Error("cannot list s3://%s/%s: %s" % (bucket, base, _s3.describe(error)))
    return ages


def plan_retention(manifests, keep):
    """(kept, expired) as {database: [names]}: the newest `keep` of each database are kept."""
    kept, expired = {}, {}
    for database, names in manifests.items():
        kept[database] = names[-keep:] if keep > 0 else []
        expired[database] = names[: len(names) - len(kept[database])]
    return kept, expired


def unreferenced(ages, referenced, grace_hours):
    """Objects no kept manifest names and that are older than the grace period."""
    return sorted(path for path, age in ages.items() if path not in referenced and age >= grace_hours)


def run(client, bucket, prefix, database, root, keep, grace_hours, jobs, proof, check_mode, now):
    """One backup run of one database's filestore; the result a module returns, plus `objects`
    (the names the newest manifest pins)."""
    files = {
        path: size
        for path, size in _filestore.local_listing(root).items()
        if _filestore.CONTENT_NAME.match(path)
    }
    objects_prefix = _s3.key_prefix(prefix) + OBJECTS
    stored = _s3.listing(client, bucket, objects_prefix)
    # A name the store holds with another size is a broken upload: it is sent again.
    missing = sorted(path for path, size in files.items() if stored.get(path) != size)
    manifests = list_manifests(client, bucket, prefix)
    names = manifests.get(database, [])
    newest = read_manifest(client, bucket, prefix, database, names[-1]) if names else None
    changed_files = newest is None or newest.get("objects") != dict(sorted(files.items()))
    result = {
        "changed": bool(missing) or changed_files,
        "files": len(files),
        "bytes": sum(files.values()),
        "uploaded_files": len(missing),
        "uploaded_bytes": sum(files[path] for path in missing),
        "proven": 0,
        "manifest": None,
        "manifest_written": changed_files,
        "expired_manifests": [],
        "deleted_objects": 0,
        "objects": sorted(files),
    }
    manifest_key = "%s%s/%s/" % (_s3.key_prefix(prefix), MANIFESTS, database)
    if not check_mode:
        _s3.upload(client, bucket, objects_prefix, root, missing, jobs)
        checked, corrupt, _by = _s3.verify(client, bucket, objects_prefix, missing, proof, jobs)
        if corrupt:
            raise _s3.S3Error(
                "%d uploaded object(s) do not hash to their names, first %s; no manifest was written: run "
                "again" % (len(corrupt), corrupt[0])
            )
        result["proven"] = checked
        if changed_files:
            name = manifest_name(now)
            write_manifest(client, bucket, prefix, build_manifest(database, now, files), name)
            names = names + [name]
            manifests[database] = names
    result["manifest"] = manifest_key + (names[-1] if names else manifest_name(now))

    kept, expired = plan_retention(manifests, keep)
    result["expired_manifests"] = [manifest_key + name for name in expired.get(database, [])]
    # Only this database's manifests expire here; every database's kept manifests protect objects.
    referenced = set(files) if check_mode else set()
    for other, other_names in kept.items():
        for name in other_names:
            referenced.update(read_manifest(client, bucket, prefix, other, name).get("objects", {}))
    gone = unreferenced(object_ages(client, bucket, prefix, now), referenced, grace_hours)
    result["deleted_objects"] = len(gone)
    result["changed"] = result["changed"] or bool(result["expired_manifests"]) or bool(gone)
    if not check_mode:
        _s3.delete(
            client, bucket, _s3.key_prefix(prefix) + MANIFESTS + "/" + database, expired.get(database, [])
        )
        _s3.delete(client, bucket, objects_prefix, gone)
    return result
