"""Filestore sync: the delta is a set difference of content-addressed names, and every file is proven."""

import hashlib
import os
import subprocess

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import filestore as _filestore


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


def test_parallel_streams_get_whole_directories_and_every_path_once():
    paths = [f"{d:02x}/{d:02x}{n:038x}" for d in range(10) for n in range(d + 1)] + ["loose-file"]
    groups = _filestore.partition_by_directory(paths, 3)
    assert len(groups) == 3
    assert sorted(p for group in groups for p in group) == sorted(paths)
    owner = {}
    for index, group in enumerate(groups):
        for path in group:
            assert owner.setdefault(path.split("/")[0], index) == index
    sizes = sorted(len(group) for group in groups)
    assert sizes[-1] - sizes[0] <= 10  # the biggest directory holds 10 files


def test_fewer_directories_than_streams_and_nothing_to_send():
    assert _filestore.partition_by_directory(["ab/x", "ab/y"], 4) == [["ab/x", "ab/y"]]
    assert _filestore.partition_by_directory([], 4) == []


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
    assert _filestore.fix_ownership(str(tmp_path), 12345, 12346, apply=False) == entries
    assert os.stat(tmp_path).st_uid != 12345
    assert _filestore.fix_ownership(str(tmp_path), 12345, 12346) == entries
    assert _filestore.fix_ownership(str(tmp_path), 12345, 12346) == 0
    assert (os.stat(tmp_path).st_uid, os.stat(tmp_path).st_gid) == (12345, 12346)


def sh(command, stdin=b""):
    run = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, check=False)
    return run.returncode, run.stdout.decode()


def nul(paths):
    return b"".join(path.encode() + b"\0" for path in paths)


def test_remote_listing_of_a_missing_directory_is_empty_and_of_a_tree_is_parsed(tmp_path):
    assert sh(_filestore.remote_listing_command(str(tmp_path / "not yet"))) == (0, "")
    name = store(tmp_path / "with space", b"scan")
    rc, out = sh(_filestore.remote_listing_command(str(tmp_path / "with space")))
    assert rc == 0 and _filestore.parse_listing(out) == {name: 4}


def test_remote_verify_hashes_in_parallel_and_names_corrupt_and_unreadable_files(tmp_path):
    names = [store(tmp_path, b"file %d" % number) for number in range(130)]
    (tmp_path / names[7]).write_bytes(b"tampered")
    (tmp_path / names[99]).unlink()
    rc, out = sh(_filestore.remote_verify_command(str(tmp_path), jobs=3), nul(names))
    assert rc == 123  # xargs: one sha1sum could not read a file
    assert _filestore.parse_sha1sum(out, names + ["notes.txt"]) == (130, sorted([names[7], names[99]]))
    rc, out = sh(_filestore.remote_verify_command(str(tmp_path)), nul(names[:5]))
    assert (rc, _filestore.parse_sha1sum(out, names[:5])) == (0, (5, []))


def test_remote_delete_removes_only_the_listed_files(tmp_path):
    keep, drop = store(tmp_path, b"keep"), store(tmp_path, b"drop")
    assert sh(_filestore.remote_delete_command(str(tmp_path)), nul([drop]))[0] == 0
    assert _filestore.local_listing(str(tmp_path)) == {keep: 4}


def test_owner_and_group_are_names_or_ids_and_nothing_else():
    assert _filestore.account(100, "owner") == "100"
    assert _filestore.account("odoo", "owner") == "odoo"
    for bad in ("odoo; rm -rf /", "", "-x", "a b"):
        with pytest.raises(ValueError):
            _filestore.account(bad, "group")
    assert _filestore.local_id("105", None) == 105
    assert _filestore.local_id("root", lambda name: (name, "x", 0)) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_remote_chown_counts_what_it_changed_and_accepts_names(tmp_path):
    root = tmp_path / "fs"
    store(root, b"a")
    store(root, b"b")
    entries = sum(1 + len(files) for _root, _dirs, files in os.walk(root))
    rc, out = sh(_filestore.remote_chown_command(str(root), 12345, 12346, apply=False))
    assert (rc, len(out.splitlines()), os.stat(root).st_uid) == (0, entries, 0)
    rc, out = sh(_filestore.remote_chown_command(str(root), 12345, 12346))
    assert (rc, len(out.splitlines())) == (0, entries)
    assert sh(_filestore.remote_chown_command(str(root), 12345, 12346)) == (0, "")
    rc, out = sh(_filestore.remote_chown_command(str(root), "root", "root"))
    assert (rc, len(out.splitlines())) == (0, entries) and os.stat(root).st_uid == 0
    assert sh(_filestore.remote_chown_command(str(root), "no-such-user", "root"))[0] != 0
    assert sh(_filestore.remote_chown_command(str(tmp_path / "absent"), 0, 0)) == (0, "")


def test_account_check_fails_on_an_unknown_name_and_lets_ids_through():
    assert sh(_filestore.remote_account_check_command("root", "root"))[0] == 0
    assert _filestore.remote_account_check_command(4321, "4321") == "true"
    run = subprocess.run(
        ["sh", "-c", _filestore.remote_account_check_command("root", "no-such-group")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stderr.strip()) == (3, "no group no-such-group on this host")
