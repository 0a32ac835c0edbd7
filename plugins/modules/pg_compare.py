#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_compare
short_description: Compare every table and sequence of a database on two PostgreSQL servers, chunk by chunk
version_added: 0.1.0
author:
  - sysgenpro platform engineering (@sysgenpro)
description:
  - Reads every table of the source database and the table of the same name on the target, in one
    C(REPEATABLE READ READ ONLY) transaction per server, and compares them chunk by chunk.
  - A table with a single integer primary key is split into key ranges of O(chunk_rows) values; any other
    primary key makes the whole table one chunk. Each chunk gives a row count and an order-independent hash
    (the sum of 64 bits of C(md5(ROW(columns)::text)), independent of the server version).
  - A chunk that differs is drilled down to rows; the first O(max_differences) keys missing on the target,
    extra on the target, or different are returned. Tables without a primary key are compared whole.
  - Every sequence's C(last_value) and C(is_called) are compared too.
  - Compare when both sides are quiet (after C(pg_cutover)'s fence and before the application switch);
    both transactions then see the same logical instant. Or later, while users work on the new side, with
    O(snapshots) that C(pg_cutover) exported at that instant (O(sequences) are then left to the cutover,
    which copied and guarded them inside its fence; a sequence is not part of a snapshot).
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
options:
  exclude_schemas:
    description: Schemas not compared (the helper schema differs by design).
    type: list
    elements: str
    default: [odoo_migration]
  chunk_rows:
    description: Key values per chunk for tables with a single integer primary key.
    type: int
    default: 50000
  max_differences:
    description:
      - How many differences (and keys per drill-down) to report at most. The compare stops at the
        O(max_differences)th difference, whatever table it is in (RV(stopped_at_max_differences)).
    type: int
    default: 20
  sequences:
    description: Whether sequences are compared too (never with O(snapshots)).
    type: bool
    default: true
  snapshots:
    description:
      - The RV(sysgenpro.odoo_migration.pg_cutover#module:snapshots) of a cutover run with
        O(sysgenpro.odoo_migration.pg_cutover#module:export_snapshots); each side is read as of that
        snapshot. Fails, saying so, when a holder is gone (the instant cannot be read any more).
    type: dict
  release_snapshots:
    description: End the processes holding O(snapshots) once the compare is done (or failed).
    type: bool
    default: true
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql
  - sysgenpro.odoo_migration.postgresql.target
  - ansible.builtin.action_common_attributes
  - sysgenpro.odoo_migration.tenancy
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode runs the same comparison.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Compare acme on both servers while both are fenced
  sysgenpro.odoo_migration.pg_compare:
    source:
      host: legacy-vm-1.example.net
      user: odoo_migration
      password: "{{ vault_source_pw }}"
      database: acme
    target:
      host: pg18.example.net
      password: "{{ vault_target_pw }}"
  delegate_to: localhost
  register: compare

- name: Stop on any difference
  ansible.builtin.assert:
    that: compare.equal
    fail_msg: "{{ compare.differences }}"
"""

RETURN = r"""
stopped_at_max_differences:
  description:
    - Whether the compare stopped at O(max_differences) differences, before it read every table,
      sequence and large object.
  returned: success
  type: bool
equal:
  description: Whether no difference was found.
  returned: success
  type: bool
  sample: true
tables_compared:
  description: Tables compared.
  returned: success
  type: int
  sample: 812
rows_compared:
  description: Rows read on the source.
  returned: success
  type: int
  sample: 1250000
chunks_compared:
  description: Chunks hashed on both sides.
  returned: success
  type: int
  sample: 930
sequences_compared:
  description: Sequences compared.
  returned: success
  type: int
  sample: 790
large_objects_compared:
  description: Large objects of the source compared by OID (content hash, owner, grants).
  returned: success
  type: int
  sample: 3
large_object_bytes_compared:
  description: Total size of the source's large objects compared.
  returned: success
  type: int
  sample: 40960
tables_without_primary_key:
  description: Tables compared whole (no drill-down possible).
  returned: success
  type: list
  elements: str
  sample: ['"public"."lab_audit_log"']
differences:
  description:
    - Each difference with C(kind) (C(rows), C(table_missing), C(table_extra_on_target), C(columns_missing),
      C(sequence_missing), C(sequence_value), C(large_object_missing), C(large_object_differs),
      C(large_object_extra_on_target)), C(table) (or C(oid) for a large object, with the differing C(columns)
      among md5, owner and acl), and for rows the C(chunk), counts and the first keys C(missing_on_target),
      C(extra_on_target), C(different).
  returned: success
  type: list
  elements: dict
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import compare as _compare
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover


def argument_spec():
    return dict(
        source=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        target=dict(type="dict", required=True, options=_pg.endpoint_options(False)),
        exclude_schemas=dict(type="list", elements="str", default=[_cutover.HELPER_SCHEMA]),
        chunk_rows=dict(type="int", default=_compare.DEFAULT_CHUNK_ROWS),
        max_differences=dict(type="int", default=_compare.DEFAULT_MAX_DIFFERENCES),
        sequences=dict(type="bool", default=True),
        role_map=dict(type="dict", default={}),
        snapshots=dict(type="dict"),
        release_snapshots=dict(type="bool", default=True),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _pg.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg 3)"), exception=_pg.PSYCOPG_IMPORT_ERROR)
    params = module.params
    if params["chunk_rows"] < 1 or params["max_differences"] < 1:
        module.fail_json(msg="chunk_rows and max_differences must be 1 or more")
    source, target = _cutover.endpoints_from_params(params)
    try:
        report = _compare.run_compare(
            source,
            target,
            exclude_schemas=params["exclude_schemas"],
            chunk_rows=params["chunk_rows"],
            max_differences=params["max_differences"],
            compare_sequence_values=params["sequences"],
            role_map=params["role_map"],
            snapshots=params["snapshots"],
            release_snapshots=params["release_snapshots"],
        )
    except _pg.PgError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
