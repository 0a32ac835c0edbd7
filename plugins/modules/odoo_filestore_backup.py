#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_filestore_backup
short_description: Back an Odoo filestore up to S3-compatible storage, content-addressed, one manifest per run
version_added: 0.2.0
description:
  - Runs on the host that has the filestore (the VM). Each file goes to
    C(<prefix>/objects/<sha1[:2]>/<sha1>), its key the SHA-1 that already names it, so a run uploads only
    what the store lacks, and a file shared by several databases of the instance is kept once. Every upload
    carries its SHA-1 and is proven by the checksum the store keeps.
  - Each run that finds the filestore changed writes C(<prefix>/manifests/<database>/<YYYYMMDDTHHMMSSZ>.json),
    which pins exactly the objects of that run's filestore (names and sizes). A run that finds the same files
    as the newest manifest writes none and reports C(changed=false).
  - Retention keeps the newest O(keep_manifests) manifests of the database. An object is deleted only when no
    kept manifest of any database under the prefix names it and it is older than O(gc_grace_hours), so a run
    of another database that is still uploading keeps its objects.
  - With O(objects_list), writes the newest manifest's object names to a file on this host, one per line; a
    restore drill checks the restored database's attachments against it.
author:
  - sysgenpro platform engineering (@sysgenpro)
requirements:
  - boto3 on the host that runs the module (Debian's C(python3-boto3))
options:
  source_path:
    description:
      - The database's filestore directory (C(<data_dir>/filestore/<database>)). One that does not exist
        yet (a database without attachments) is backed up as empty, with a warning.
    type: path
    required: true
  database:
    description: The database the filestore belongs to; it names the manifests.
    type: str
    required: true
  keep_manifests:
    description: Manifests kept for the database, newest first.
    type: int
    default: 14
  gc_grace_hours:
    description: An object no kept manifest names is deleted only once it is at least this old.
    type: float
    default: 24
  objects_list:
    description: File on this host that receives the newest manifest's object names (one per line).
    type: path
  jobs:
    description: Uploads and proofs run side by side.
    type: int
    default: 4
extends_documentation_fragment:
  - sysgenpro.odoo_migration.object_storage
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Lists both sides and reports what a run would upload, whether it would write a manifest, and what
        retention would delete.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: sysgenpro.odoo_migration.odoo_filestore_sync
  - module: sysgenpro.odoo_migration.pg_restore_drill
"""

EXAMPLES = r"""
- name: Back acme's filestore up
  sysgenpro.odoo_migration.odoo_filestore_backup:
    source_path: /var/lib/odoo/.local/share/Odoo/filestore/acme
    database: acme
    destination_s3:
      endpoint_url: https://s3.internal.example:9000
      bucket: odoo-filestore
      prefix: erp-01/backup
      access_key: "{{ filestore_s3_access_key }}"
      secret_key: "{{ filestore_s3_secret_key }}"
      ca_bundle: /etc/ssl/certs/ca-certificates.crt
    objects_list: /var/lib/odoo-migration/filestore-backup/acme.objects
  become: true
"""

RETURN = r"""
files:
  description: Content files in the filestore.
  returned: always
  type: int
bytes:
  description: Their total size.
  returned: always
  type: int
uploaded_files:
  description: Files sent by this run (in check mode, that a run would send).
  returned: always
  type: int
uploaded_bytes:
  description: Their total size.
  returned: always
  type: int
proven:
  description: Objects of this run proven by their SHA-1.
  returned: always
  type: int
manifest:
  description: The key of the manifest this run wrote, or of the newest one when nothing changed.
  returned: always
  type: str
manifest_written:
  description: Whether this run wrote a manifest (in check mode, whether a run would).
  returned: always
  type: bool
expired_manifests:
  description: Manifests retention deleted (in check mode, would delete).
  returned: always
  type: list
  elements: str
deleted_objects:
  description: Objects no kept manifest names that retention deleted (in check mode, would delete).
  returned: always
  type: int
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import filestore as _filestore
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import (
    filestore_backup as _backup,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import object_storage as _s3


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source_path=dict(type="path", required=True),
            database=dict(type="str", required=True),
            destination_s3=dict(type="dict", options=_s3.argument_spec()),
            keep_manifests=dict(type="int", default=14),
            gc_grace_hours=dict(type="float", default=24),
            objects_list=dict(type="path"),
            jobs=dict(type="int", default=4),
        ),
        supports_check_mode=True,
    )
    if not _s3.HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=_s3.BOTO3_IMPORT_ERROR)
    params = module.params
    store = params["destination_s3"]
    if not store:
        module.fail_json(msg="destination_s3 is missing: name the store (endpoint_url, bucket, prefix, keys)")
    if os.path.exists(params["source_path"]) and not os.path.isdir(params["source_path"]):
        module.fail_json(
            msg="%s is not a directory: give the database's filestore (<data_dir>/filestore/<database>)"
            % params["source_path"]
        )
    if not os.path.exists(params["source_path"]):
        # Odoo makes a database's filestore with its first attachment: none yet is an empty one.
        module.warn(
            "%s does not exist: %s has no attachment in its filestore yet"
            % (params["source_path"], params["database"])
        )
    if params["keep_manifests"] < 1:
        module.fail_json(msg="keep_manifests must be at least 1: the newest manifest is what a restore reads")
    try:
        result = _backup.run(
            _s3.make_client(store, params["jobs"]),
            store["bucket"],
            store["prefix"],
            params["database"],
            params["source_path"],
            keep=params["keep_manifests"],
            grace_hours=params["gc_grace_hours"],
            jobs=params["jobs"],
            proof=store["proof"],
            check_mode=module.check_mode,
            now=datetime.datetime.now(datetime.timezone.utc),
        )
    except _s3.S3Error as error:
        module.fail_json(msg=str(error))
    if params["objects_list"] and not module.check_mode:
        _filestore.write_lines(params["objects_list"], result.pop("objects"))
    else:
        result.pop("objects")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
