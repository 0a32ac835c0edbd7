"""The filestore's backups: only new names uploaded, one manifest per changed run, retention that
never deletes what a kept manifest names. The store is the unit suite's fake S3 client (the lab's
MinIO runs the same engine in tests/integration/test_filestore_backup.py)."""

import datetime
import json

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import (
    filestore_backup as _backup,
)
from test_filestore import store
from test_s3 import FakeStore

PREFIX = "vm-1/backup"
START = datetime.datetime(2026, 12, 1, 1, 0, tzinfo=datetime.UTC)


class AgedStore(FakeStore):
    """FakeStore whose listings say when each object was written (the module's clock decides)."""

    def __init__(self):
        super().__init__(page_size=50)
        self.written = {}
        self.clock = START

    def put_object(self, Bucket, Key, Body, **arguments):
        super().put_object(
            Bucket,
            Key,
            Body if not isinstance(Body, bytes) else Body,
            **{
                key: value for key, value in arguments.items() if key in ("ChecksumAlgorithm", "ChecksumSHA1")
            },
        )
        self.written[Key] = self.clock

    def paginate(self, Bucket, Prefix):
        for page in super().paginate(Bucket, Prefix):
            for entry in page.get("Contents", []):
                entry["LastModified"] = self.written.get(entry["Key"], START)
            yield page


def backup(client, root, now, *, database="acme", keep=2, grace=24, check_mode=False):
    client.clock = now
    return _backup.run(
        client,
        "bucket",
        PREFIX,
        database,
        str(root),
        keep=keep,
        grace_hours=grace,
        jobs=2,
        proof="checksum",
        check_mode=check_mode,
        now=now,
    )


def manifests(client, database="acme"):
    return sorted(key for key in client.objects if key.startswith(f"{PREFIX}/manifests/{database}/"))


def test_a_second_run_uploads_nothing_and_writes_no_manifest(tmp_path):
    client = AgedStore()
    names = [store(tmp_path, b"invoice %d" % number) for number in range(5)]
    first = backup(client, tmp_path, START)
    assert first["uploaded_files"] == 5 and first["proven"] == 5 and first["manifest_written"]
    manifest = json.loads(client.objects[first["manifest"]][0])
    assert sorted(manifest["objects"]) == sorted(names) and manifest["files"] == 5
    assert all(f"{PREFIX}/objects/{name}" in client.objects for name in names)

    again = backup(client, tmp_path, START + datetime.timedelta(hours=1))
    assert not again["changed"] and again["uploaded_files"] == 0 and not again["manifest_written"]
    assert again["manifest"] == first["manifest"] and len(manifests(client)) == 1


def test_only_new_files_go_up_and_the_new_manifest_pins_the_whole_filestore(tmp_path):
    client = AgedStore()
    for number in range(3):
        store(tmp_path, b"scan %d" % number)
    backup(client, tmp_path, START)
    added = store(tmp_path, b"a new scan")
    run = backup(client, tmp_path, START + datetime.timedelta(days=1))
    assert run["uploaded_files"] == 1 and run["files"] == 4
    assert added in json.loads(client.objects[run["manifest"]][0])["objects"]
    assert run["objects"] == sorted(json.loads(client.objects[run["manifest"]][0])["objects"])


def test_check_mode_says_what_a_run_would_send_and_sends_nothing(tmp_path):
    client = AgedStore()
    store(tmp_path, b"contract")
    run = backup(client, tmp_path, START, check_mode=True)
    assert run["changed"] and run["uploaded_files"] == 1 and run["manifest_written"]
    assert client.objects == {}


def test_retention_keeps_what_a_kept_manifest_names_and_deletes_the_rest_after_the_grace(tmp_path):
    client = AgedStore()
    deleted_later = store(tmp_path, b"deleted in Odoo later")
    kept = store(tmp_path, b"kept for ever")
    backup(client, tmp_path, START, keep=2)
    (tmp_path / deleted_later).unlink()
    backup(client, tmp_path, START + datetime.timedelta(days=1), keep=2)
    # Two manifests kept: the first still names the deleted file, so its object stays.
    assert f"{PREFIX}/objects/{deleted_later}" in client.objects
    third = store(tmp_path, b"third day")
    run = backup(client, tmp_path, START + datetime.timedelta(days=2), keep=2)
    assert run["expired_manifests"] and len(manifests(client)) == 2
    assert run["deleted_objects"] == 1
    assert f"{PREFIX}/objects/{deleted_later}" not in client.objects
    assert f"{PREFIX}/objects/{kept}" in client.objects and f"{PREFIX}/objects/{third}" in client.objects


def test_an_object_of_another_database_is_never_deleted(tmp_path):
    client = AgedStore()
    acme, globex = tmp_path / "acme", tmp_path / "globex"
    shared = store(acme, b"the same logo")
    assert store(globex, b"the same logo") == shared
    only_globex = store(globex, b"globex only")
    backup(client, acme, START, database="acme", keep=1)
    backup(client, globex, START, database="globex", keep=1)
    for day in (1, 2, 3):
        backup(client, acme, START + datetime.timedelta(days=day), database="acme", keep=1)
    assert f"{PREFIX}/objects/{only_globex}" in client.objects
    assert f"{PREFIX}/objects/{shared}" in client.objects


def test_a_young_unreferenced_object_survives_the_grace_period(tmp_path):
    client = AgedStore()
    store(tmp_path, b"a")
    backup(client, tmp_path, START)
    # Another run's upload in progress: an object no manifest names yet, written an hour ago.
    client.objects[f"{PREFIX}/objects/ab/" + "ab" * 20] = (b"in flight", None)
    client.written[f"{PREFIX}/objects/ab/" + "ab" * 20] = START + datetime.timedelta(days=1, hours=-1)
    run = backup(client, tmp_path, START + datetime.timedelta(days=1), grace=24)
    assert run["deleted_objects"] == 0


def test_a_broken_upload_is_sent_again(tmp_path):
    client = AgedStore()
    name = store(tmp_path, b"full content")
    client.objects[f"{PREFIX}/objects/{name}"] = (b"full", None)
    run = backup(client, tmp_path, START)
    assert run["uploaded_files"] == 1
    assert client.objects[f"{PREFIX}/objects/{name}"][0] == b"full content"


def test_manifest_names_sort_by_time():
    assert _backup.manifest_name(START) == "20261201T010000Z.json"
    assert _backup.manifest_time("20261201T010000Z.json") == START
    with pytest.raises(ValueError):
        _backup.manifest_time("latest.json")
