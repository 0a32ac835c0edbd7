# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where odoo_filestore_sync sends a filestore, private: a directory on this host, one on another
host over SSH, or S3-compatible object storage. Each destination lists, receives (tar streams, or
uploads), deletes, proves (hashes against the content-addressed names) and fixes ownership; the
module decides what to send from their listings.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import shlex
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import filestore as _filestore
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import object_storage as _s3

LISTING = "find %s -type f -printf '%%P\\t%%s\\n'"


def ssh_command(spec, remote):
    command = ["ssh", "-p", str(spec["port"]), "-o", "BatchMode=yes"]
    if spec.get("private_key_file"):
        command += ["-i", spec["private_key_file"]]
    for option in spec.get("options") or []:
        command += ["-o", option]
    if spec["become"]:
        remote = "sudo -n sh -c %s" % shlex.quote(remote)
    return command + ["%s@%s" % (spec["user"], spec["host"]), remote]


def where(spec):
    return "%s@%s:%s" % (spec["user"], spec["host"], spec["port"]) if spec else "this host"


def source_listing(module, spec, path):
    remote = "test -d %s && %s" % (shlex.quote(path), LISTING % shlex.quote(path))
    argv = ssh_command(spec, remote) if spec else ["sh", "-c", remote]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(
            msg="cannot list the source filestore %s on %s (rc=%d): %s. Check the path (the database's "
            "filestore under data_dir), SSH access and sudo rights"
            % (path, where(spec), rc, (err or out).strip()[-500:])
        )
    return _filestore.parse_listing(out)


def tar_pipeline(module, producer, consumer, paths, streams=1):
    """producer | consumer, with the NUL-separated file list on the producer's stdin; with
    several streams, one such pipeline per group of whole directories, run side by side."""
    groups = _filestore.partition_by_directory(paths, streams)
    if not groups:
        return

    def send(group):
        handle, listing = tempfile.mkstemp(prefix="filestore-sync-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(b"".join(path.encode("utf-8") + b"\0" for path in group))
            # Every word is quoted: the shell only joins the two tars with a pipe.
            pipeline = "set -o pipefail; %s < %s | %s" % (
                " ".join(shlex.quote(word) for word in producer),
                shlex.quote(listing),
                " ".join(shlex.quote(word) for word in consumer),
            )
            return module.run_command(pipeline, use_unsafe_shell=True, executable="/bin/bash")
        finally:
            os.remove(listing)

    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        failed = [(rc, out, err) for rc, out, err in pool.map(send, groups) if rc != 0]
    if failed:
        rc, out, err = failed[0]
        module.fail_json(
            msg="sending the filestore delta failed (rc=%s, %d of %d streams): %s; the files already "
            "sent are kept, re-run to resume" % (rc, len(failed), len(groups), (err or out).strip()[-800:])
        )


class LocalDestination(object):
    """A directory on this host; the source is here or on another host over SSH."""

    def __init__(self, module, root, streams=1):
        self.module, self.root, self.streams = module, root, streams

    def listing(self):
        return _filestore.local_listing(self.root)

    def receive(self, source_spec, source_path, paths):
        remote = "tar -C %s --null -T - -cf -" % shlex.quote(source_path)
        producer = ssh_command(source_spec, remote) if source_spec else ["sh", "-c", remote]
        os.makedirs(self.root, exist_ok=True)
        tar_pipeline(self.module, producer, ["tar", "-C", self.root, "-xf", "-"], paths, self.streams)

    def delete(self, paths):
        for path in paths:
            os.remove(os.path.join(self.root, path))

    def verify(self, paths, jobs):
        return _filestore.verify_tree(self.root, paths, jobs)

    def check_accounts(self, owner, group):
        try:
            self.ids = _filestore.local_id(owner, pwd.getpwnam), _filestore.local_id(group, grp.getgrnam)
        except (KeyError, ValueError) as error:
            self.module.fail_json(msg="unknown owner or group on this host: %s" % error)

    def fix_ownership(self, apply=True):
        if not os.path.isdir(self.root):
            return 0
        return _filestore.fix_ownership(self.root, self.ids[0], self.ids[1], apply)


class RemoteDestination(object):
    """A directory on another host reached over SSH; the source is a directory on this host.

    Every step runs on the remote side: listing (find), receiving (tar -x), hashing (sha1sum),
    removing and chown; only file lists and the tar stream cross the connection."""

    def __init__(self, module, spec, root, streams=1):
        self.module, self.spec, self.root, self.streams = module, spec, root, streams

    def run(self, remote, what, paths=None, ok=(0,)):
        data = b"".join(path.encode("utf-8") + b"\0" for path in paths) if paths is not None else None
        rc, out, err = self.module.run_command(ssh_command(self.spec, remote), data=data, binary_data=True)
        if rc not in ok:
            self.module.fail_json(
                msg="%s %s on %s failed (rc=%d): %s. Check the path, SSH access and sudo rights"
                % (what, self.root, where(self.spec), rc, (err or out).strip()[-500:])
            )
        return out

    def listing(self):
        return _filestore.parse_listing(
            self.run(_filestore.remote_listing_command(self.root), "listing the destination filestore")
        )

    def receive(self, source_spec, source_path, paths):
        consumer = ssh_command(self.spec, "mkdir -p %s && tar -C %s -xf -" % ((shlex.quote(self.root),) * 2))
        tar_pipeline(
            self.module,
            ["tar", "-C", source_path, "--null", "-T", "-", "-cf", "-"],
            consumer,
            paths,
            self.streams,
        )

    def delete(self, paths):
        if paths:
            self.run(_filestore.remote_delete_command(self.root), "removing extra files from", paths)

    def verify(self, paths, jobs):
        checked = [path for path in paths if _filestore.CONTENT_NAME.match(path)]
        if not checked:
            return 0, []
        # xargs exits 123 when a sha1sum could not read a file: that file is reported as corrupt.
        out = self.run(_filestore.remote_verify_command(self.root, jobs), "hashing", checked, ok=(0, 123))
        return _filestore.parse_sha1sum(out, checked)

    def check_accounts(self, owner, group):
        try:
            self.chown = dict(
                (apply, _filestore.remote_chown_command(self.root, owner, group, apply))
                for apply in (True, False)
            )
            check = _filestore.remote_account_check_command(owner, group)
        except ValueError as error:
            self.module.fail_json(msg=str(error))
        rc, out, err = self.module.run_command(ssh_command(self.spec, check))
        if rc != 0:
            self.module.fail_json(
                msg="cannot give %s ownership %s:%s on %s (rc=%d): %s"
                % (self.root, owner, group, where(self.spec), rc, (err or out).strip()[-500:])
            )

    def fix_ownership(self, apply=True):
        return len(self.run(self.chown[apply], "fixing the ownership of").splitlines())


class S3Destination(object):
    """Objects under a prefix of a bucket of S3-compatible storage; the source is a directory on this host."""

    def __init__(self, module, spec, jobs):
        self.module, self.spec, self.jobs = module, spec, jobs
        self.bucket, self.prefix = spec["bucket"], spec["prefix"]
        self.verified_by = {"checksum": 0, "content": 0}
        try:
            self.client = _s3.make_client(spec, jobs)
        except _s3.ERRORS as error:
            module.fail_json(msg="cannot set up the S3 client: %s" % _s3.describe(error))

    def attempt(self, function, *args):
        try:
            return function(self.client, self.bucket, self.prefix, *args)
        except _s3.S3Error as error:
            self.module.fail_json(msg=str(error))

    def listing(self):
        return self.attempt(_s3.listing)

    def receive(self, source_spec, source_path, paths):
        self.attempt(_s3.upload, source_path, paths, self.jobs)

    def delete(self, paths):
        self.attempt(_s3.delete, paths)

    def verify(self, paths, jobs):
        checked, corrupt, by = self.attempt(_s3.verify, paths, self.spec["proof"], jobs)
        # The first proof covers every file; a second one (of files sent again) adds nothing to it.
        if not any(self.verified_by.values()):
            self.verified_by = by
        return checked, corrupt
