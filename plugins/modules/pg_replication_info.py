#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_replication_info
short_description: Lag, slot health and subscription state of a PostgreSQL logical migration
version_added: 0.1.0
author:
  - sysgenpro platform engineering (@sysgenpro)
description:
  - Reads the slot on the source (lag in bytes from C(confirmed_flush_lsn), retained WAL from
    C(restart_lsn), C(wal_status), C(safe_wal_size)) and the subscription on the target (enabled,
    apply worker, C(pg_stat_subscription), error counts from C(pg_stat_subscription_stats)).
  - Measures lag in seconds by writing the heartbeat row C(odoo_migration.heartbeat) on the source and
    waiting up to O(heartbeat_timeout) seconds for it on the target (not in check mode).
  - An unreachable side (server down, network cut) is reported in RV(problems) and in
    RV(source)/RV(target), not as a failure.
  - With O(wal_budget_bytes) and O(abort_on_budget=true), when the slot retains more than 80% of the
    budget the module drops the subscription (when the target is reachable) and the slot, so the source
    keeps its disk; C(changed) is C(true) only then.
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  source:
    description:
      - How the control node connects to the source database (the legacy server), as in
        M(sysgenpro.odoo_migration.pg_migration_preflight).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the source PostgreSQL server.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 5432
      user:
        description: Login role; a superuser or a role with C(REPLICATION) that owns the tables.
        type: str
        default: postgres
      password:
        description:
          - Password of O(source.user). Never shown in output or error messages.
        type: str
      database:
        description: The database to migrate.
        type: str
        required: true
      sslmode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
  target:
    description:
      - How the control node connects to the target PostgreSQL server (a superuser).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the target PostgreSQL server.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 5432
      user:
        description: Login role on the target; a superuser.
        type: str
        default: postgres
      password:
        description:
          - Password of O(target.user). Never shown in output or error messages.
        type: str
      database:
        description: The migrated database on the target.
        type: str
        required: true
      sslmode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
  slot_name:
    description:
      - Name of the logical replication slot on the source.
      - Defaults to C(odoo_migration_<database>) (the source database's name, lower-case, other
        characters than C([a-z0-9_]) as C(_)), the slot M(sysgenpro.odoo_migration.pg_cutover) and
        M(sysgenpro.odoo_migration.pg_migration_finalize) look for.
    type: str
  heartbeat_timeout:
    description: Seconds to wait for the heartbeat on the target.
    type: float
    default: 10
  wal_budget_bytes:
    description: WAL the source may retain for the slot; the abort threshold is 80% of it.
    type: int
  abort_on_budget:
    description: Drop subscription and slot when the retained WAL passes 80% of O(wal_budget_bytes).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Watch the replication of acme
  sysgenpro.odoo_migration.pg_replication_info:
    source: "{{ source_endpoint }}"
    target: "{{ target_endpoint | combine({'database': 'acme'}) }}"
    wal_budget_bytes: "{{ 20 * 1024 ** 3 }}"
    abort_on_budget: true
  delegate_to: localhost
  register: replication
"""

RETURN = r"""
healthy:
  description: True when no problem was found.
  returned: always
  type: bool
  sample: true
problems:
  description:
    - What is wrong, one sentence each (unreachable side, inactive slot, disabled subscription, errors,
      budget).
  returned: always
  type: list
  elements: str
  sample: ["slot odoo_migration is not active: no subscription is streaming from it"]
source:
  description: Whether the source was reachable, and the error when not.
  returned: always
  type: dict
  sample: {reachable: true, error: null}
target:
  description: Whether the target was reachable, and the error when not.
  returned: always
  type: dict
  sample: {reachable: false, error: "cannot connect to PostgreSQL at ..."}
slot:
  description:
    - The slot row (active, active_pid, wal_status, lag_bytes, retained_bytes, safe_wal_size, LSNs);
      null when absent or unreachable.
  returned: always
  type: dict
  sample: {slot_name: odoo_migration_acme, active: true, wal_status: reserved, lag_bytes: 0,
           retained_bytes: 5608}
subscription:
  description:
    - The subscription (name, enabled, slot_name, worker_pid, last_msg_receipt_time, latest_end_lsn,
      apply_error_count, sync_error_count).
  returned: always
  type: dict
  sample: {name: odoo_migration, enabled: true, apply_error_count: 0}
lag_bytes:
  description: WAL between the source's current position and what the subscriber confirmed.
  returned: always
  type: int
  sample: 0
lag_seconds:
  description:
    - Seconds the heartbeat took to appear on the target; null when it did not arrive or was not
      written.
  returned: always
  type: float
  sample: 0.05
heartbeat_arrived:
  description: Whether the heartbeat reached the target in time; null when not measured.
  returned: always
  type: bool
  sample: true
wal_budget_bytes:
  description: The budget given.
  returned: always
  type: int
  sample: 21474836480
wal_budget_limit_bytes:
  description: 80% of the budget, the abort threshold.
  returned: always
  type: int
  sample: 17179869184
over_budget:
  description: True when the retained WAL passed the threshold.
  returned: always
  type: bool
  sample: false
aborted:
  description: True when subscription and slot were dropped (would be, in check mode) because of the budget.
  returned: always
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils import _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils import _replication as _rep
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils._cutover import forward_slot


def argument_spec():
    return dict(
        source=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        target=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        slot_name=dict(type="str"),
        heartbeat_timeout=dict(type="float", default=10),
        wal_budget_bytes=dict(type="int"),
        abort_on_budget=dict(type="bool", default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _pg.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg 3)"), exception=_pg.PSYCOPG_IMPORT_ERROR)
    params = module.params
    if params["wal_budget_bytes"] is not None and params["wal_budget_bytes"] <= 0:
        module.fail_json(msg="wal_budget_bytes must be more than 0")
    source = _pg.PgEndpoint.from_params(params["source"])
    target = _pg.PgEndpoint.from_params(params["target"])
    try:
        result = _rep.replication_info(
            source,
            target,
            slot=params["slot_name"] or forward_slot(params["source"]["database"]),
            heartbeat_timeout=params["heartbeat_timeout"],
            wal_budget_bytes=params["wal_budget_bytes"],
            abort_on_budget=params["abort_on_budget"],
            check_mode=module.check_mode,
        )
    except (_pg.PgError, _pg.psycopg.Error) as error:
        module.fail_json(msg=_pg.redact(str(error), [source.password, target.password]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
