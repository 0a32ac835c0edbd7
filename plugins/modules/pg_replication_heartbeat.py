#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_replication_heartbeat
short_description: Time a heartbeat through a PostgreSQL logical migration, and enforce its WAL budget
version_added: 0.1.0
author:
  - sysgenpro platform engineering (@sysgenpro)
description:
  - Reads what M(sysgenpro.odoo_migration.pg_replication_info) reads, then acts.
  - Writes the heartbeat row C(odoo_migration.heartbeat) on the source and waits up to
    O(heartbeat_timeout) seconds for it on the target; RV(lag_seconds) is how long it took. The row is the
    migration's own bookkeeping, in its helper schema.
  - With O(wal_budget_bytes) and O(abort_on_budget=true), when the slot retains more than 80% of the
    budget the module drops the subscription (when the target is reachable) and the slot, so the source
    keeps its disk.
  - C(changed) is true whenever it wrote (the heartbeat, the abort); in check mode it writes nothing and
    says what it would write.
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql
  - sysgenpro.odoo_migration.postgresql.target
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads, writes no heartbeat and drops nothing; C(changed) and RV(aborted) say what a real run would do.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  slot_name:
    description:
      - Name of the logical replication slot on the source; defaults as in
        M(sysgenpro.odoo_migration.pg_replication_info).
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
seealso:
  - module: sysgenpro.odoo_migration.pg_replication_info
"""

EXAMPLES = r"""
- name: Wait until acme's replication has caught up, and keep the source's disk safe
  sysgenpro.odoo_migration.pg_replication_heartbeat:
    source: "{{ source_endpoint }}"
    target: "{{ target_endpoint }}"
    heartbeat_timeout: 5
    wal_budget_bytes: "{{ 20 * 1024 ** 3 }}"
    abort_on_budget: true
  delegate_to: localhost
  register: replication
  until: replication.heartbeat_arrived and replication.lag_seconds <= 5
  retries: 60
  delay: 5
"""

RETURN = r"""
healthy:
  description: True when no problem was found.
  returned: always
  type: bool
problems:
  description: What is wrong, one sentence each, as in M(sysgenpro.odoo_migration.pg_replication_info).
  returned: always
  type: list
  elements: str
source:
  description: Whether the source was reachable, and the error when not.
  returned: always
  type: dict
target:
  description: Whether the target was reachable, and the error when not.
  returned: always
  type: dict
slot:
  description: The slot row, as in M(sysgenpro.odoo_migration.pg_replication_info); null when absent.
  returned: always
  type: dict
subscription:
  description: The subscription, as in M(sysgenpro.odoo_migration.pg_replication_info); null when absent.
  returned: always
  type: dict
lag_bytes:
  description: WAL between the source's current position and what the subscriber confirmed.
  returned: always
  type: int
lag_seconds:
  description:
    - Seconds the heartbeat took to appear on the target; null when it did not arrive or was not written.
  returned: always
  type: float
  sample: 0.05
heartbeat_arrived:
  description: Whether the heartbeat reached the target in time; null when not written (check mode).
  returned: always
  type: bool
wal_budget_bytes:
  description: The budget given.
  returned: always
  type: int
wal_budget_limit_bytes:
  description: 80% of the budget, the abort threshold.
  returned: always
  type: int
over_budget:
  description: True when the retained WAL passed the threshold.
  returned: always
  type: bool
aborted:
  description: True when subscription and slot were dropped (would be, in check mode) because of the budget.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import replication as _rep


def main():
    module = AnsibleModule(argument_spec=_rep.watch_argument_spec(acting=True), supports_check_mode=True)
    _rep.run_watch_module(module, acting=True)


if __name__ == "__main__":
    main()
