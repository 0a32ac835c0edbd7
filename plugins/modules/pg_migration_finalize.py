#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_migration_finalize
short_description: Remove every trace of a logical-replication migration and restore fenced roles
version_added: 0.1.0
author:
  - sysgenpro platform engineering (@sysgenpro)
description:
  - On both servers, drops the subscriptions C(odoo_migration) (target) and C(odoo_migration_reverse) (source)
    without letting them reach the other server (disable, C(slot_name = NONE), drop), then the slots
    C(odoo_migration_<database>) (source) and C(odoo_migration_reverse_<database>) (target), the
    publications C(odoo_migration) and C(odoo_migration_reverse), and the helper schema C(odoo_migration).
  - Before the helper schema goes, restores the attributes (C(LOGIN), C(default_transaction_read_only))
    of every role that C(pg_cutover) fenced on that server, as recorded in C(odoo_migration.fenced_roles).
  - Idempotent; a second run reports C(changed=false).
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
options:
  restore_roles:
    description: Whether fenced roles get their previous attributes back.
    type: bool
    default: true
  replication_logins:
    description:
      - Logins created for return paths (the C(return_login) of M(sysgenpro.odoo_migration.pg_cutover)),
        on either server. Each one marked as such loses CONNECT on this database and is dropped once no
        other database lets it connect; a role of that name without the mark is left alone.
    type: list
    elements: str
    default: []
  drop_helper_schema:
    description:
      - Whether the helper schema C(odoo_migration) is dropped on both servers.
      - Write privileges that a prepared cutover (M(sysgenpro.odoo_migration.pg_cutover) with
        O(sysgenpro.odoo_migration.pg_cutover#module:stage=prepare)) still holds are given back first
        (action C(restore), kind C(writes)).
    type: bool
    default: true
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql
  - sysgenpro.odoo_migration.postgresql.target
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Check mode returns the actions it would take and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Finalize the migration of acme
  sysgenpro.odoo_migration.pg_migration_finalize:
    source:
      host: legacy-vm-1.example.net
      user: odoo_migration
      password: "{{ vault_source_pw }}"
      database: acme
    target:
      host: pg18.example.net
      password: "{{ vault_target_pw }}"
  delegate_to: localhost
"""

RETURN = r"""
actions:
  description:
    - What was (or, in check mode, would be) dropped or restored, with C(kind), C(side) and C(name)
      or C(roles).
    - For a login (C(kind=login)), C(result) says whether it was C(dropped), or C(kept) because another
      database still lets it connect (that database's finalize drops it).
  returned: success
  type: list
  elements: dict
  sample: [{action: drop, kind: subscription, side: source, name: odoo_migration_reverse}]
database:
  description: The database finalized.
  returned: success
  type: str
  sample: acme
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover


def argument_spec():
    return dict(
        source=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        target=dict(type="dict", required=True, options=_pg.endpoint_options(False)),
        restore_roles=dict(type="bool", default=True),
        drop_helper_schema=dict(type="bool", default=True),
        replication_logins=dict(type="list", elements="str", default=[]),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _pg.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg 3)"), exception=_pg.PSYCOPG_IMPORT_ERROR)
    params = module.params
    source, target = _cutover.endpoints_from_params(params)
    try:
        report = _cutover.run_finalize(
            source,
            target,
            restore_roles=params["restore_roles"],
            drop_helper_schema=params["drop_helper_schema"],
            check_mode=module.check_mode,
            replication_logins=params["replication_logins"],
        )
    except _pg.PgError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**report)


if __name__ == "__main__":
    main()
