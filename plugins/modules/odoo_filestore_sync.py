#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_filestore_sync
short_description: Copy an Odoo filestore between hosts, incrementally, and prove every file
version_added: 0.1.0
description:
  - Pulls a filestore into a directory on this host (the source on this host, or on another host
    over SSH, O(source_ssh)), or pushes a directory of this host to a directory on another host over
    SSH (O(destination_ssh)), as the rollback of an application cutover does. Lists both sides, sends
    only the files the destination lacks as tar streams (O(jobs) of them side by side, each carrying
    whole C(<sha1[:2]>) directories), then verifies that every content file's SHA-1 equals its name.
  - With O(destination_ssh), every check runs on the remote host itself (its listing with C(find), the
    hashes with C(sha1sum) in parallel, the ownership fix with C(chown), which takes names or ids);
    it needs C(tar), GNU C(find), C(xargs) and C(sha1sum) there, and C(sudo -n) with
    O(destination_ssh.become).
  - Or uploads a directory of this host to S3-compatible object storage through boto3
    (O(destination_s3), exclusive with O(destination_path), O(source_ssh) and O(owner)); the delta comes
    from listing the keys and sizes under the prefix; in parallel, each object with the SHA-1 its name
    promises, and proves every
    object by the SHA-1 checksum the store keeps (C(HeadObject) with C(ChecksumMode=ENABLED)) or by
    reading it back (O(destination_s3.proof)).
  - Odoo's filestore is content-addressed (C(<sha1[:2]>/<sha1>)) and files are never rewritten in
    place, so the delta is a set difference of names; no rolling checksums are needed. A re-run
    after a sync sends nothing and reports C(changed=false); a final run during the fence sends the
    last delta.
  - Reports files only the destination has (never deleted unless O(delete_extra)), corrupt files, and
    the O(store_fnames) (from C(ir_attachment.store_fname)) that have no file at the destination.
  - Odoo's garbage-collection markers (C(checklist/)) are not copied.
author:
  - sysgenpro platform engineering (@sysgenpro)
requirements:
  - boto3 (only for O(destination_s3))
extends_documentation_fragment:
  - sysgenpro.odoo_migration.object_storage
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Lists both sides and reports what would be sent; writes nothing on either side, bucket included.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  source_path:
    description:
      - The filestore directory of one database on the source (C(<data_dir>/filestore/<db>)), on
        this host unless O(source_ssh) is given.
    type: str
    required: true
  destination_path:
    description:
      - The directory that receives it (a directory or a volume's mount point), on this host unless
        O(destination_ssh) is given, as an absolute path. Created when missing.
      - Required unless O(destination_s3) is given; exclusive with it.
    type: str
  source_ssh:
    description:
      - How to reach the source host. Omit it when the source is on this host.
      - Mutually exclusive with O(destination_ssh).
    type: dict
    suboptions:
      host:
        description: Address of the host.
        type: str
        required: true
      port:
        description: SSH port.
        type: int
        default: 22
      user:
        description: SSH user; it reaches the filestore through C(sudo -n) when C(become) is true.
        type: str
        required: true
      private_key_file:
        description: Private key for that user.
        type: path
      become:
        description: Read (or write) the filestore as root through C(sudo -n).
        type: bool
        default: true
      options:
        description: Extra C(-o) options for ssh, such as C(StrictHostKeyChecking=accept-new).
        type: list
        elements: str
        default: []
  destination_ssh:
    description:
      - How to reach the destination host, to push the directory O(source_path) of this host to
        O(destination_path) there. Omit it when the destination is on this host.
      - Mutually exclusive with O(source_ssh).
    type: dict
    suboptions:
      host:
        description: Address of the host.
        type: str
        required: true
      port:
        description: SSH port.
        type: int
        default: 22
      user:
        description: SSH user; it reaches the filestore through C(sudo -n) when C(become) is true.
        type: str
        required: true
      private_key_file:
        description: Private key for that user.
        type: path
      become:
        description: Read (or write) the filestore as root through C(sudo -n).
        type: bool
        default: true
      options:
        description: Extra C(-o) options for ssh, such as C(StrictHostKeyChecking=accept-new).
        type: list
        elements: str
        default: []
  owner:
    description:
      - Owner the destination tree is given, as a user name or a numeric id (the container user's
        uid; on a VM, a name such as C(odoo) is resolved there).
      - Requires O(group).
    type: raw
    aliases: [owner_uid]
  group:
    description: Group the destination tree is given, as a group name or a numeric id.
    type: raw
    aliases: [owner_gid]
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
    description:
      - Parallel tar streams that send the delta, parallel hashing at the destination (threads here,
        C(sha1sum) processes on a remote host), and parallel uploads and proofs with O(destination_s3).
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
    owner: 100
    group: 101
  delegate_to: docker-host-1

- name: Rollback - push the files written in the container back to the VM, owned by its Odoo user
  sysgenpro.odoo_migration.odoo_filestore_sync:
    source_path: /var/lib/docker/volumes/odoo-acme-data/_data/filestore/acme
    destination_path: /var/lib/odoo/.local/share/Odoo/filestore/acme
    destination_ssh:
      host: 10.0.0.12
      user: ansible
      private_key_file: ~/.ssh/migration
    owner: odoo
    group: odoo
    verify: sent
  delegate_to: docker-host-1

- name: Send the filestore of acme to object storage, every object proven by reading it back
  sysgenpro.odoo_migration.odoo_filestore_sync:
    source_path: /var/lib/docker/volumes/odoo-acme-data/_data/filestore/acme
    destination_s3:
      endpoint_url: https://s3.internal.example:9000
      bucket: odoo-filestores
      prefix: acme
      region: us-east-1
      access_key: "{{ s3_access_key }}"
      secret_key: "{{ s3_secret_key }}"
      ca_bundle: /etc/ssl/certs/internal-ca.pem
      proof: content
    jobs: 8
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
replaced_corrupt_files:
  description:
    - Destination files of the right size whose content did not hash to their name; this run sent them
      again and proved them (the delta compares sizes only). Empty in check mode.
  returned: success
  type: list
  elements: str
corrupt_files:
  description: Files whose content does not hash to their name (after one more send of each).
  returned: success
  type: list
  elements: str
missing_attachments:
  description: O(store_fnames) without a file at the destination.
  returned: success
  type: list
  elements: str
ownership_fixed:
  description:
    - Entries whose owner or group was changed; in check mode, the entries already at the
      destination whose owner or group would change.
  returned: success
  type: int
verified_by:
  description:
    - With O(destination_s3), how many objects were proven by their stored C(checksum) and how many by
      reading their C(content) back.
  returned: success with O(destination_s3)
  type: dict
  sample: {checksum: 700, content: 0}
seconds:
  description: Time the run took.
  returned: success
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import (
    destinations as _destinations,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import filestore as _filestore
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import object_storage as _s3


def ssh_spec():
    """The suboptions of source_ssh and destination_ssh (a new dict for each)."""
    return dict(
        host=dict(type="str", required=True),
        port=dict(type="int", default=22),
        user=dict(type="str", required=True),
        private_key_file=dict(type="path"),
        become=dict(type="bool", default=True),
        options=dict(type="list", elements="str", default=[]),
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source_path=dict(type="str", required=True),
            destination_path=dict(type="str"),
            source_ssh=dict(type="dict", options=ssh_spec()),
            destination_ssh=dict(type="dict", options=ssh_spec()),
            destination_s3=dict(type="dict", options=_s3.argument_spec()),
            owner=dict(type="raw", aliases=["owner_uid"]),
            group=dict(type="raw", aliases=["owner_gid"]),
            store_fnames=dict(type="list", elements="str", default=[]),
            verify=dict(type="str", choices=["all", "sent", "none"], default="all"),
            delete_extra=dict(type="bool", default=False),
            jobs=dict(type="int", default=4),
        ),
        mutually_exclusive=[
            ("source_ssh", "destination_ssh"),
            ("destination_s3", "destination_path"),
            ("destination_s3", "source_ssh"),
            ("destination_s3", "owner"),
        ],
        required_one_of=[("destination_path", "destination_s3")],
        required_by={"destination_ssh": "destination_path"},
        required_together=[("owner", "group")],
        supports_check_mode=True,
    )
    started = time.monotonic()
    params = module.params
    source_spec = params["source_ssh"]
    if params["destination_s3"]:
        if not _s3.HAS_BOTO3:
            module.fail_json(
                msg=missing_required_lib("boto3", reason="for destination_s3"),
                exception=_s3.BOTO3_IMPORT_ERROR,
            )
        destination = _destinations.S3Destination(module, params["destination_s3"], params["jobs"])
    elif params["destination_ssh"]:
        destination = _destinations.RemoteDestination(
            module, params["destination_ssh"], params["destination_path"], params["jobs"]
        )
    else:
        destination = _destinations.LocalDestination(module, params["destination_path"], params["jobs"])
    owned = params["owner"] is not None
    if owned:
        # An unknown name fails the run before anything is sent.
        destination.check_accounts(params["owner"], params["group"])
    source_files = _destinations.source_listing(module, source_spec, params["source_path"])
    before = destination.listing()
    to_send, extra = _filestore.plan_delta(source_files, before)
    sent_bytes = sum(source_files[path] for path in to_send)
    changed = bool(to_send) or bool(params["delete_extra"] and extra)
    if module.check_mode:
        # Entries already there whose ownership would change (files still to send come on top).
        would_fix = destination.fix_ownership(apply=False) if owned else 0
        module.exit_json(
            changed=changed or bool(would_fix),
            source_files=len(source_files),
            sent_files=len(to_send),
            sent_bytes=sent_bytes,
            destination_files=len(before),
            extra_files=extra[:50],
            verified_files=0,
            corrupt_files=[],
            replaced_corrupt_files=[],
            missing_attachments=_filestore.missing_attachments(params["store_fnames"], before),
            ownership_fixed=would_fix,
            seconds=round(time.monotonic() - started, 3),
        )
    if to_send:
        destination.receive(source_spec, params["source_path"], to_send)
    if params["delete_extra"]:
        destination.delete(extra)
        extra = []
    after = destination.listing() if (to_send or params["delete_extra"]) else before
    verify = params["verify"]
    checked = sorted(after) if verify == "all" else (to_send if verify == "sent" else [])
    verified, corrupt = destination.verify(checked, params["jobs"])
    # A destination file of the right size but the wrong content (the delta compares sizes only)
    # is sent again once, and proven again.
    resend = [path for path in corrupt if path in source_files]
    replaced = []
    if resend:
        destination.receive(source_spec, params["source_path"], resend)
        _again, still = destination.verify(resend, params["jobs"])
        replaced = sorted(set(resend) - set(still))
        corrupt = sorted((set(corrupt) - set(resend)) | set(still))
    fixed = 0
    if owned:
        fixed = destination.fix_ownership()
    missing = _filestore.missing_attachments(params["store_fnames"], after)
    result = dict(
        changed=changed or bool(fixed) or bool(resend),
        replaced_corrupt_files=replaced,
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
    if params["destination_s3"]:
        result["verified_by"] = destination.verified_by
    if corrupt or missing:
        module.fail_json(
            msg="the destination filestore is not a faithful copy: %d corrupt file(s), %d attachment(s) "
            "without a file" % (len(corrupt), len(missing)),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
