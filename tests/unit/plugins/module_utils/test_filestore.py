"""Filestore sync: the delta is a set difference of content-addressed names, and every file is proven."""

import hashlib
import os

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils import _filestore


def store(root, content):
    digest = hashlib.sha1(content).hexdigest()
    path = root / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return f"{digest[:2]}/{digest}"


def test_listing_leaves_gc_markers_out(tmp_path):
    name = store(tmp_path, b"invoice")
    (tmp_path / "checklist" / "ab").mkdir(parents=True)
    (tmp_path / "checklist" / "ab" / "marker").write_bytes(b"")
    assert _filestore.local_listing(str(tmp_path)) == {name: 7}
    text = f"{name}\t7\nchecklist/ab/marker\t0\n\n"
    assert _filestore.parse_listing(text) == {name: 7}


def test_delta_sends_missing_and_resized_files_and_reports_extra():
    source = {"aa/1": 5, "bb/2": 7, "cc/3": 9}
    destination = {"aa/1": 5, "bb/2": 3, "dd/4": 1}
    assert _filestore.plan_delta(source, destination) == (["bb/2", "cc/3"], ["dd/4"])
    assert _filestore.plan_delta(source, dict(source)) == ([], [])


def test_verify_finds_content_that_does_not_hash_to_its_name(tmp_path):
    good = store(tmp_path, b"good")
    bad = store(tmp_path, b"bad")
    (tmp_path / bad).write_bytes(b"tampered")
    (tmp_path / "notes.txt").write_text("not content-addressed")
    checked, corrupt = _filestore.verify_tree(str(tmp_path), [good, bad, "notes.txt", "ff/" + "f" * 40])
    assert checked == 3
    assert corrupt == sorted([bad, "ff/" + "f" * 40])


def test_missing_attachments_and_ownership(tmp_path):
    name = store(tmp_path, b"x")
    assert _filestore.missing_attachments([name, "aa/" + "a" * 40, name], {name: 1}) == ["aa/" + "a" * 40]
    uid, gid = os.getuid(), os.getgid()
    assert _filestore.fix_ownership(str(tmp_path), uid, gid) == 0


def test_fix_ownership_changes_each_entry_once(tmp_path):
    store(tmp_path, b"a")
    store(tmp_path, b"b")
    entries = sum(1 + len(files) for _root, _dirs, files in os.walk(tmp_path))
    assert _filestore.fix_ownership(str(tmp_path), 12345, 12346) == entries
    assert _filestore.fix_ownership(str(tmp_path), 12345, 12346) == 0
    assert (os.stat(tmp_path).st_uid, os.stat(tmp_path).st_gid) == (12345, 12346)
