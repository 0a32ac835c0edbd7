#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_filestore_sync
short_description: Copy an Odoo filestore to this host, incrementally, and prove every file
version_added: 0.1.0
description:
  - Runs on the destination host. Lists the source filestore (on this host, or on another host over
    SSH), sends only the files the destination lacks as one tar stream, then verifies that every
    content file's SHA-1 equals its name.
  - Odoo's filestore is content-addressed (C(<sha1[:2]>/<sha1>)) and files are never rewritten in
    place, so the delta is a set difference of names; no rolling checksums are needed. A re-run
    after a sync sends nothing and reports C(changed=false); a final run during the fence sends the
    last delta.
  - Reports files only the destination has (never deleted unless O(delete_extra)), corrupt files, and
    the O(store_fnames) (from C(ir_attachment.store_fname)) that have no file at the destination.
  - Odoo's garbage-collection markers (C(checklist/)) are not copied.
author:
  - sysgenpro platform engineering (@sysgenpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Lists both sides and reports what would be sent; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  source_path:
    description: The filestore directory of one database on the source (C(<data_dir>/filestore/<db>)).
    type: str
    required: true
  destination_path:
    description: The directory on this host that receives it (a directory or a volume's mount point).
    type: path
    required: true
  source_ssh:
    description:
      - How to reach the source host. Omit it when the source is on this host.
    type: dict
    suboptions:
      host:
        description: Address of the source host.
        type: str
        required: true
      port:
        description: SSH port.
        type: int
        default: 22
      user:
        description: SSH user; it reads the filestore through C(sudo -n) when O(source_ssh.become) is true.
        type: str
        required: true
      private_key_file:
        description: Private key for that user.
        type: path
      become:
        description: Read the source as root through C(sudo -n).
        type: bool
        default: true
      options:
        description: Extra C(-o) options for ssh, such as C(StrictHostKeyChecking=accept-new).
        type: list
        elements: str
        default: []
  owner_uid:
    description: Numeric owner the destination tree is given (the container user's uid).
    type: int
  owner_gid:
    description: Numeric group the destination tree is given.
    type: int
  store_fnames:
    description: The C(ir_attachment.store_fname) values that must exist at the destination.
    type: list
    elements: str
    default: []
  verify:
    description: Hash C(all) content files at the destination, only the C(sent) ones, or C(none).
    type: str
    choices: [all, sent, none]
    default: all
  delete_extra:
    description: Remove files that exist only at the destination.
    type: bool
    default: false
  jobs:
    description: Threads that hash files during verification.
    type: int
    default: 4
"""

EXAMPLES = r"""
- name: Pull the filestore of acme from the VM into the Odoo volume
  sysgenpro.odoo_migration.odoo_filestore_sync:
    source_path: /var/lib/odoo/.local/share/Odoo/filestore/acme
    destination_path: /var/lib/docker/volumes/odoo-acme-data/_data/filestore/acme
    source_ssh:
      host: 10.0.0.12
      user: ansible
      private_key_file: ~/.ssh/migration
    owner_uid: 100
    owner_gid: 101
  delegate_to: docker-host-1
"""

RETURN = r"""
source_files:
  description: Content files at the source.
  returned: success
  type: int
sent_files:
  description: Files sent by this run.
  returned: success
  type: int
sent_bytes:
  description: Bytes sent by this run.
  returned: success
  type: int
destination_files:
  description: Content files at the destination after the run.
  returned: success
  type: int
extra_files:
  description: Files only the destination has (up to 50 shown); removed only with O(delete_extra).
  returned: success
  type: list
  elements: str
verified_files:
  description: Files whose SHA-1 was checked against their name.
  returned: success
  type: int
corrupt_files:
  description: Files whose content does not hash to their name.
  returned: success
  type: list
  elements: str
missing_attachments:
  description: O(store_fnames) without a file at the destination.
  returned: success
  type: list
  elements: str
ownership_fixed:
  description: Entries whose owner or group was changed.
  returned: success
  type: int
seconds:
  description: Time the run took.
  returned: success
  type: float
"""

import os
import shlex
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils import _filestore

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


def source_listing(module, spec, path):
    remote = "test -d %s && %s" % (shlex.quote(path), LISTING % shlex.quote(path))
    argv = ssh_command(spec, remote) if spec else ["sh", "-c", remote]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        where = "%s@%s:%s" % (spec["user"], spec["host"], spec["port"]) if spec else "this host"
        module.fail_json(
            msg="cannot list the source filestore %s on %s (rc=%d): %s. Check the path (the database's "
            "filestore under data_dir), SSH access and sudo rights"
            % (path, where, rc, (err or out).strip()[-500:])
        )
    return _filestore.parse_listing(out)


def send(module, spec, source_path, destination_path, paths):
    """One tar stream from the source into the destination; the file list goes to the source's stdin."""
    remote = "tar -C %s --null -T - -cf -" % shlex.quote(source_path)
    producer = ssh_command(spec, remote) if spec else ["sh", "-c", remote]
    os.makedirs(destination_path, exist_ok=True)
    handle, listing = tempfile.mkstemp(prefix="filestore-sync-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(b"".join(path.encode("utf-8") + b"\0" for path in paths))
        # Every word is quoted: the shell only joins the two tars with a pipe.
        pipeline = "set -o pipefail; %s < %s | tar -C %s -xf -" % (
            " ".join(shlex.quote(word) for word in producer),
            shlex.quote(listing),
            shlex.quote(destination_path),
        )
        rc, out, err = module.run_command(pipeline, use_unsafe_shell=True, executable="/bin/bash")
    finally:
        os.remove(listing)
    if rc != 0:
        module.fail_json(
            msg="sending the filestore delta failed (rc=%s): %s; the files already sent are kept, "
            "re-run to resume" % (rc, (err or out).strip()[-800:])
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source_path=dict(type="str", required=True),
            destination_path=dict(type="path", required=True),
            source_ssh=dict(
                type="dict",
                options=dict(
                    host=dict(type="str", required=True),
                    port=dict(type="int", default=22),
                    user=dict(type="str", required=True),
                    private_key_file=dict(type="path"),
                    become=dict(type="bool", default=True),
                    options=dict(type="list", elements="str", default=[]),
                ),
            ),
            owner_uid=dict(type="int"),
            owner_gid=dict(type="int"),
            store_fnames=dict(type="list", elements="str", default=[]),
            verify=dict(type="str", choices=["all", "sent", "none"], default="all"),
            delete_extra=dict(type="bool", default=False),
            jobs=dict(type="int", default=4),
        ),
        required_together=[("owner_uid", "owner_gid")],
        supports_check_mode=True,
    )
    started = time.monotonic()
    params = module.params
    spec = params["source_ssh"]
    destination = params["destination_path"]
    source_files = source_listing(module, spec, params["source_path"])
    before = _filestore.local_listing(destination)
    to_send, extra = _filestore.plan_delta(source_files, before)
    sent_bytes = sum(source_files[path] for path in to_send)
    changed = bool(to_send) or bool(params["delete_extra"] and extra)
    if module.check_mode:
        module.exit_json(
            changed=changed,
            source_files=len(source_files),
            sent_files=len(to_send),
            sent_bytes=sent_bytes,
            destination_files=len(before),
            extra_files=extra[:50],
            verified_files=0,
            corrupt_files=[],
            missing_attachments=_filestore.missing_attachments(params["store_fnames"], before),
            ownership_fixed=0,
            seconds=round(time.monotonic() - started, 3),
        )
    if to_send:
        send(module, spec, params["source_path"], destination, to_send)
    if params["delete_extra"]:
        for path in extra:
            os.remove(os.path.join(destination, path))
        extra = []
    after = _filestore.local_listing(destination)
    verify = params["verify"]
    checked = sorted(after) if verify == "all" else (to_send if verify == "sent" else [])
    verified, corrupt = _filestore.verify_tree(destination, checked, params["jobs"])
    fixed = 0
    if params["owner_uid"] is not None and os.path.isdir(destination):
        fixed = _filestore.fix_ownership(destination, params["owner_uid"], params["owner_gid"])
    missing = _filestore.missing_attachments(params["store_fnames"], after)
    result = dict(
        changed=changed or bool(fixed),
        source_files=len(source_files),
        sent_files=len(to_send),
        sent_bytes=sent_bytes,
        destination_files=len(after),
        extra_files=extra[:50],
        verified_files=verified,
        corrupt_files=corrupt,
        missing_attachments=missing,
        ownership_fixed=fixed,
        seconds=round(time.monotonic() - started, 3),
    )
    if corrupt or missing:
        module.fail_json(
            msg="the destination filestore is not a faithful copy: %d corrupt file(s), %d attachment(s) "
            "without a file" % (len(corrupt), len(missing)),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
