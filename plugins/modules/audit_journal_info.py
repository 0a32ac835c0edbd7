#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: audit_journal_info
short_description: Check a host's migration journal end to end and name its first bad line
version_added: 0.1.0
description:
  - Reads the hash-chained journal the C(sysgenpro.odoo_migration.audit) callback writes
    (C(<state_dir>/<host>/journal.jsonl)) from its first line to its last, and checks that every record
    follows the one before it (sequence and hash of the previous record) and was not changed after it was
    written.
  - Reports the number of records, the last record's sequence and time, and the first bad line with what
    is wrong with it. Fails on a broken journal unless O(fail_on_broken=false).
  - It only reads.
author:
  - sysgenpro platform engineering (@sysgenpro)
options:
  path:
    description:
      - The journal file. Give it, or O(state_dir) and O(host).
    type: path
  state_dir:
    description: The migration state directory (the roles' C(odoo_migration_state_dir)).
    type: path
  host:
    description: The inventory host whose journal to check, under O(state_dir).
    type: str
  fail_on_broken:
    description: Fail when the chain is broken (the result still carries RV(first_bad_line) and RV(problem)).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only; check mode returns the same result.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - plugin: sysgenpro.odoo_migration.audit
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Check acme's journal before the audit
  sysgenpro.odoo_migration.audit_journal_info:
    state_dir: "{{ odoo_migration_state_dir }}"
    host: legacy-vm-1
  delegate_to: localhost

- name: From a shell
  ansible.builtin.command: >-
    ansible localhost -m sysgenpro.odoo_migration.audit_journal_info
    -a path=migration-state/legacy-vm-1/journal.jsonl
  changed_when: false
"""

RETURN = r"""
path:
  description: The journal checked.
  returned: always
  type: str
exists:
  description: Whether the journal file exists (a host that was never worked on has none).
  returned: always
  type: bool
records:
  description: How many records the journal holds.
  returned: always
  type: int
intact:
  description: Whether every line is a record that follows the one before it and is unchanged.
  returned: always
  type: bool
first_bad_line:
  description: The line number (from 1) of the first bad line; null when intact.
  returned: always
  type: int
problem:
  description: What is wrong with RV(first_bad_line); null when intact.
  returned: always
  type: str
  sample: was changed after it was written
last_seq:
  description: The last record's sequence number; null for an empty journal.
  returned: always
  type: int
last_ts:
  description: When the last record was written (ISO 8601, UTC); null for an empty journal.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit import journal as _journal


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            state_dir=dict(type="path"),
            host=dict(type="str"),
            fail_on_broken=dict(type="bool", default=True),
        ),
        required_one_of=[("path", "state_dir")],
        mutually_exclusive=[("path", "state_dir")],
        required_together=[("state_dir", "host")],
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"] or os.path.join(params["state_dir"], params["host"], "journal.jsonl")
    result = dict(
        changed=False,
        path=path,
        exists=os.path.exists(path),
        records=0,
        intact=True,
        first_bad_line=None,
        problem=None,
        last_seq=None,
        last_ts=None,
    )
    if params["state_dir"] and not os.path.isdir(params["state_dir"]):
        module.fail_json(
            msg="state directory %s does not exist: give the directory the roles use "
            "(odoo_migration_state_dir)" % params["state_dir"],
            **result,
        )
    problem = _journal.first_problem(path)
    if problem is None:
        records = _journal.read_journal(path)
        result["records"] = len(records)
        if records:
            result.update(last_seq=records[-1].get("seq"), last_ts=records[-1].get("ts"))
        module.exit_json(**result)
    line, what = problem
    result.update(intact=False, first_bad_line=line, problem=what)
    with open(path, encoding="utf-8", errors="replace") as handle:
        result["records"] = sum(1 for text in handle if text.strip())
    if params["fail_on_broken"]:
        module.fail_json(msg="journal %s is broken: line %d %s" % (path, line, what), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
