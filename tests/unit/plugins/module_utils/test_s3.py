"""Filestore to S3: delta from listed keys and sizes, uploads that carry their SHA-1, every object proven."""

import base64
import hashlib
import io
import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import object_storage as _s3
from ansible_collections.sysgenpro.odoo_migration.plugins.modules import odoo_filestore_sync
from botocore.exceptions import ClientError
from test_filestore import store

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


def error(code):
    return ClientError({"Error": {"Code": code, "Message": code + " happened"}}, "Operation")


class FakeStore:
    """The part of an S3 client the engine uses; like AWS, it checks a sent SHA-1 and keeps it."""

    def __init__(self, checks=True, page_size=3):
        self.objects, self.checks, self.page_size = {}, checks, page_size
        self.heads = self.gets = 0

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket, Prefix):
        if Bucket != "bucket":
            raise error("NoSuchBucket")
        keys = sorted(key for key in self.objects if key.startswith(Prefix))
        for start in range(0, max(1, len(keys)), self.page_size):
            chunk = keys[start : start + self.page_size]
            yield (
                {"Contents": [{"Key": key, "Size": len(self.objects[key][0])} for key in chunk]}
                if chunk
                else {}
            )

    def put_object(self, Bucket, Key, Body, ChecksumAlgorithm=None, ChecksumSHA1=None):
        data = Body.read() if hasattr(Body, "read") else Body
        actual = base64.b64encode(hashlib.sha1(data).digest()).decode()
        if ChecksumSHA1 and self.checks and ChecksumSHA1 != actual:
            raise error("BadDigest")
        kept = ChecksumSHA1 or (actual if ChecksumAlgorithm == "SHA1" else None)
        self.objects[Key] = (data, kept)

    def head_object(self, Bucket, Key, ChecksumMode):
        self.heads += 1
        if Key not in self.objects:
            raise error("404")
        return {"ChecksumSHA1": self.objects[Key][1]} if self.objects[Key][1] else {}

    def get_object(self, Bucket, Key):
        self.gets += 1
        if Key not in self.objects:
            raise error("NoSuchKey")
        return {"Body": io.BytesIO(self.objects[Key][0])}

    def delete_objects(self, Bucket, Delete):
        assert len(Delete["Objects"]) <= 1000
        for entry in Delete["Objects"]:
            self.objects.pop(entry["Key"], None)
        return {}


def test_prefix_and_checksum_forms():
    assert [_s3.key_prefix(p) for p in ("", None, "/", "a/b", "/a/b/")] == ["", "", "", "a/b/", "a/b/"]
    digest = hashlib.sha1(b"x").hexdigest()
    assert _s3.sha1_hex(_s3.sha1_base64(digest)) == digest
    assert _s3.sha1_hex("abc=-3") is None and _s3.sha1_hex(None) is None and _s3.sha1_hex("!!") is None


def test_listing_pages_through_and_leaves_markers_and_other_prefixes_out():
    client = FakeStore(page_size=2)
    for key in ("fs/aa/1", "fs/bb/2", "fs/checklist/aa/1", "fs/cc/", "fs/dd/3", "other/ee/4"):
        client.objects[key] = (b"12345", None)
    assert _s3.listing(client, "bucket", "/fs/") == {"aa/1": 5, "bb/2": 5, "dd/3": 5}
    with pytest.raises(_s3.S3Error, match="cannot list s3://missing/fs/: NoSuchBucket"):
        _s3.listing(client, "missing", "fs")


def test_upload_carries_the_sha1_of_the_name_and_a_checking_store_refuses_wrong_bytes(tmp_path):
    client = FakeStore()
    names = [store(tmp_path, b"doc %d" % number) for number in range(7)]
    _s3.upload(client, "bucket", "acme", str(tmp_path), names, jobs=3)
    assert _s3.listing(client, "bucket", "acme") == {name: len(b"doc 0") for name in names}
    (tmp_path / names[2]).write_bytes(b"rotten")
    with pytest.raises(_s3.S3Error, match=r"1 of 2 upload\(s\) .* BadDigest"):
        _s3.upload(client, "bucket", "acme", str(tmp_path), names[1:3])


def test_proof_by_stored_checksum_falls_back_to_reading_and_names_corrupt_objects(tmp_path):
    client = FakeStore()
    names = [store(tmp_path, b"scan %d" % number) for number in range(5)]
    _s3.upload(client, "bucket", "", str(tmp_path), names)
    client.objects[names[0]] = (b"other bytes", None)  # overwritten by another tool: no SHA-1 kept
    client.put_object("bucket", names[1], b"forged", ChecksumAlgorithm="SHA1")  # a SHA-1, of other bytes
    del client.objects[names[2]]
    client.objects[names[2] + "x"] = (b"", None)
    checked, corrupt, by = _s3.verify(client, "bucket", "", names + ["notes.txt"], "checksum", jobs=2)
    assert checked == 5 and corrupt == sorted(names[:3])
    assert by == {"checksum": 3, "content": 1} and client.gets == 1  # the lost one fails at HEAD


def test_proof_by_content_reads_every_object_back(tmp_path):
    client = FakeStore(checks=False)
    names = [store(tmp_path, b"img %d" % number) for number in range(4)]
    _s3.upload(client, "bucket", "p", str(tmp_path), names)
    # A store that keeps whatever checksum it is sent: only reading back tells.
    client.put_object("bucket", "p/" + names[3], b"bad", ChecksumSHA1=_s3.sha1_base64(names[3][3:]))
    assert _s3.verify(client, "bucket", "p", names, "checksum")[1] == []
    checked, corrupt, by = _s3.verify(client, "bucket", "p", names, "content")
    assert (checked, corrupt, by) == (4, [names[3]], {"checksum": 0, "content": 4})


def test_a_store_that_refuses_a_read_is_reported_as_such_not_as_a_corrupt_object(tmp_path):
    client = FakeStore()
    names = [store(tmp_path, b"doc %d" % number) for number in range(3)]
    _s3.upload(client, "bucket", "", str(tmp_path), names)

    def refused(Bucket, Key, ChecksumMode):
        raise error("AccessDenied")

    client.head_object = refused
    with pytest.raises(_s3.S3Error, match=r"cannot read s3://bucket/\w\w/\w+ to prove it: AccessDenied"):
        _s3.verify(client, "bucket", "", names, "checksum")


def test_delete_goes_in_batches_of_a_thousand():
    client = FakeStore()
    paths = [f"aa/{number:04d}" for number in range(2500)]
    for path in paths:
        client.objects["x/" + path] = (b"", None)
    _s3.delete(client, "bucket", "x", paths[:2400])
    assert sorted(client.objects) == ["x/" + path for path in paths[2400:]]


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as leaving:
        odoo_filestore_sync.main()
    return leaving.value.code, json.loads(capsys.readouterr().out)


def test_the_module_fails_clearly_without_boto3(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(_s3, "HAS_BOTO3", False)
    code, result = run_module(
        {"source_path": str(tmp_path), "destination_s3": {"bucket": "b", "secret_key": SECRET}}, capsys
    )
    assert (
        code == 1
        and "boto3" in result["msg"]
        and "Failed to import the required Python library" in result["msg"]
    )


def test_the_module_uploads_proves_and_keeps_the_secret_out(monkeypatch, capsys, tmp_path):
    client = FakeStore()
    monkeypatch.setattr(_s3, "make_client", lambda spec, jobs: client)
    names = [store(tmp_path, b"attachment %d" % number) for number in range(6)]
    args = {
        "source_path": str(tmp_path),
        "destination_s3": {
            "bucket": "bucket",
            "prefix": "acme",
            "access_key": "AKIDEXAMPLE",
            "secret_key": SECRET,
        },
        "store_fnames": names + ["ff/" + "f" * 40],
    }
    code, result = run_module(args, capsys)
    assert code == 1 and result["missing_attachments"] == ["ff/" + "f" * 40]
    assert (result["sent_files"], result["verified_files"], result["verified_by"]) == (
        6,
        6,
        {"checksum": 6, "content": 0},
    )
    assert SECRET not in json.dumps(result)
    args["store_fnames"] = names
    code, result = run_module(args, capsys)
    assert (code, result["changed"], result["sent_files"]) == (0, False, 0)
    client.objects["acme/extra"] = (b"", None)
    code, result = run_module(dict(args, _ansible_check_mode=True, delete_extra=True), capsys)
    assert (code, result["changed"], result["extra_files"]) == (0, True, ["extra"])
    assert "acme/extra" in client.objects


def test_a_corrupt_file_of_the_right_size_is_replaced_on_the_next_sync(capsys, tmp_path):
    """The delta compares sizes; the proof finds the bad content and the run sends that file again."""
    source, destination = tmp_path / "source", tmp_path / "destination"
    source.mkdir()
    names = [store(source, b"invoice %d" % number) for number in range(4)]
    args = {"source_path": str(source), "destination_path": str(destination)}
    code, result = run_module(args, capsys)
    assert (code, result["sent_files"], result["verified_files"]) == (0, 4, 4)
    bad = destination / names[2]
    bad.write_bytes(b"X" * bad.stat().st_size)  # same size, other bytes: the size delta cannot see it
    code, result = run_module(args, capsys)
    assert code == 0, result.get("msg")
    assert result["changed"] and result["sent_files"] == 0
    assert result["replaced_corrupt_files"] == [names[2]] and result["corrupt_files"] == []
    assert bad.read_bytes() == b"invoice 2"
    code, result = run_module(args, capsys)
    assert (code, result["changed"], result["replaced_corrupt_files"]) == (0, False, [])
