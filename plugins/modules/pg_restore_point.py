#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_restore_point
short_description: Write a named restore point with the exact row counts of every table at that point
version_added: 0.2.0
description:
  - Gives a restore drill something exact to compare with. For a moment every table of the databases
    named is locked in SHARE mode (readers go on, writers wait), a snapshot of each database is exported,
    the restore point is written with C(pg_create_restore_point), and the locks are released; how long
    writers waited is returned. The rows of every table are then counted in those snapshots, so the
    counts are what a restore to the point must bring back.
  - Then switches to a new WAL segment so that the point is archived at once, and waits until the
    archiver reports it.
  - A writer that holds a table longer than O(lock_timeout_ms) makes the module fail without writing a
    restore point, and nothing stays locked.
author:
  - sysgenpro platform engineering (@sysgenpro)
options:
  databases:
    description: The databases whose tables are counted.
    type: list
    elements: str
    required: true
  name:
    description: The restore point's name.
    type: str
    required: true
  lock_timeout_ms:
    description: How long the module waits for a table a writer holds before it gives up.
    type: int
    default: 5000
  archive_timeout:
    description: Seconds to wait until the restore point's WAL segment is archived; 0 does not wait.
    type: int
    default: 120
requirements:
  - psycopg >= 3.1 on the node that runs the module
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql.server
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Writes no restore point, locks nothing and counts nothing; reports that a run would write one.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: sysgenpro.odoo_migration.pg_restore_drill
"""

EXAMPLES = r"""
- name: Mark a point and count what it holds
  sysgenpro.odoo_migration.pg_restore_point:
    source:
      host: 127.0.0.1
      port: 5441
      user: odoo_migration
      password: "{{ odoo_migration_source_pg_password }}"
    databases: [acme]
    name: drill-{{ now(utc=true).strftime('%Y%m%dT%H%M%SZ') }}
  register: restore_point
"""

RETURN = r"""
name:
  description: The restore point's name.
  returned: always
  type: str
lsn:
  description: Its WAL location; null in check mode.
  returned: always
  type: str
time:
  description: When it was written (ISO 8601, UTC); null in check mode.
  returned: always
  type: str
segment:
  description: The WAL segment that holds it; null in check mode.
  returned: always
  type: str
archived:
  description: Whether the archiver reported that segment within O(archive_timeout).
  returned: always
  type: bool
writers_held_seconds:
  description: How long writers waited for the locks.
  returned: always
  type: float
row_counts:
  description: Rows of every table at the point, as a mapping of database to a mapping of table to rows.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import (
    restore_point as _restore_point,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(
                type="dict", required=True, options=_pg.endpoint_options(False, database_default="postgres")
            ),
            databases=dict(type="list", elements="str", required=True),
            name=dict(type="str", required=True),
            lock_timeout_ms=dict(type="int", default=5000),
            archive_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(
        changed=True,
        name=params["name"],
        lsn=None,
        time=None,
        segment=None,
        archived=False,
        writers_held_seconds=0.0,
        row_counts={},
    )
    if not params["databases"]:
        module.fail_json(
            msg="databases is empty: name the databases whose tables the drill compares", **result
        )
    if module.check_mode:
        module.exit_json(**result)
    endpoint = _pg.PgEndpoint.from_params(params["source"], default_database="postgres")
    try:
        result.update(
            _restore_point.create(endpoint, params["databases"], params["name"], params["lock_timeout_ms"])
        )
        if params["archive_timeout"] > 0:
            result["archived"] = _restore_point.wait_archived(
                endpoint, result["segment"], params["archive_timeout"]
            )
    except _pg.PgError as error:
        result["changed"] = False
        module.fail_json(msg=str(error), **result)
    if params["archive_timeout"] > 0 and not result["archived"]:
        module.fail_json(
            msg="restore point %s was written but its WAL segment %s was not archived within %d s: check "
            "archiving (pg_stat_archiver, the baseline's archiving check)"
            % (params["name"], result["segment"], params["archive_timeout"]),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
