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
  - Reports the apply lag in seconds that the source's walsender measured (C(replay_lag_seconds) in RV(slot)).
  - An unreachable side (server down, network cut) is reported in RV(problems) and in
    RV(source)/RV(target), not as a failure.
  - With O(wal_budget_bytes), says whether the slot retains more than 80% of the budget.
  - It only reads. To measure the lag with a heartbeat row, or to drop the subscription and slot over the
    WAL budget, use M(sysgenpro.odoo_migration.pg_replication_heartbeat).
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql
  - sysgenpro.odoo_migration.postgresql.target
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only; check mode returns the same result.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  slot_name:
    description:
      - Name of the logical replication slot on the source.
      - Defaults to C(odoo_migration_<database>) (the source database's name, lower-case, other
        characters than C([a-z0-9_]) as C(_)), the slot M(sysgenpro.odoo_migration.pg_cutover) and
        M(sysgenpro.odoo_migration.pg_migration_finalize) look for.
    type: str
  wal_budget_bytes:
    description: WAL the source may retain for the slot; RV(over_budget) is true past 80% of it.
    type: int
"""

EXAMPLES = r"""
- name: Read the replication of acme
  sysgenpro.odoo_migration.pg_replication_info:
    source: "{{ source_endpoint }}"
    target: "{{ target_endpoint }}"
    wal_budget_bytes: "{{ 20 * 1024 ** 3 }}"
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
    - The slot row (active, active_pid, wal_status, lag_bytes, retained_bytes, safe_wal_size, LSNs, and
      replay_lag_seconds, the apply lag the walsender measured, null when idle or not streaming); null when
      absent or unreachable.
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
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import replication as _rep


def main():
    module = AnsibleModule(argument_spec=_rep.watch_argument_spec(), supports_check_mode=True)
    _rep.run_watch_module(module)


if __name__ == "__main__":
    main()
