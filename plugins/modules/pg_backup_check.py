#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_backup_check
short_description: Check a VM's backup baseline, each check with its own verdict
version_added: 0.2.0
description:
  - Runs on the VM, as the PostgreSQL owner, against its pgBackRest stanza. Each check has its own verdict and
    detail in RV(checks)
  - C(archiving_works_now) - C(pgbackrest check) forces a WAL switch and waits until the segment is in the
    repository (skipped in check mode, and with O(archive_check=false)).
  - C(stanza) - the stanza exists and pgBackRest reports it ok.
  - C(newest_backup_age) and C(newest_full_age) - the newest backup without errors, and the newest full one,
    are younger than the policy.
  - C(repository_verifies) - C(pgbackrest verify), read from its report, since its exit code is 0 even when it
    finds errors (pgbackrest#2502). An expired backup that C(backup.info) no longer names, with no file
    left, is not counted (a versioned MinIO bucket still lists its folder); the check's detail names it.
  - It changes no configuration. The forced WAL switch of C(archiving_works_now) is its only effect on the
    server.
author:
  - sysgenpro platform engineering (@sysgenpro)
options:
  max_backup_age_hours:
    description: The newest backup may be at most this old.
    type: float
    default: 26
  max_full_age_hours:
    description: The newest full backup may be at most this old.
    type: float
    default: 192
  archive_check:
    description: Force a WAL switch and wait until it is archived.
    type: bool
    default: true
  verify:
    description:
      - Verify the repository (reads every file of the kept backups and WAL; takes a while on a large one).
    type: bool
    default: true
  fail_on_problem:
    description: Fail when a check fails (the result still carries every check).
    type: bool
    default: true
extends_documentation_fragment:
  - sysgenpro.odoo_migration.pgbackrest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Runs every check that only reads; the forced WAL switch is skipped and its check left out.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: sysgenpro.odoo_migration.pg_backup_stanza
"""

EXAMPLES = r"""
- name: Check the backup baseline of a VM
  sysgenpro.odoo_migration.pg_backup_check:
    stanza: legacy-vm-1
    max_backup_age_hours: 26
  become: true
  become_user: postgres
  register: backup_baseline
"""

RETURN = r"""
ok:
  description: Whether every check passed.
  returned: always
  type: bool
checks:
  description: Each check with C(name), C(ok) and C(detail).
  returned: always
  type: list
  elements: dict
  sample:
    - name: newest_backup_age
      ok: true
      detail: "newest backup 20261207-101500F is 0.1 h old (policy: at most 26 h)"
problems:
  description: The detail of every failed check.
  returned: always
  type: list
  elements: str
backups:
  description:
    - The repository's backups, oldest first, with C(label), C(type), C(start), C(stop) (epoch seconds),
      C(wal_start), C(wal_stop), C(size_bytes) and C(error).
  returned: always
  type: list
  elements: dict
archive:
  description: The WAL range the repository holds (C(min), C(max)); empty when none.
  returned: always
  type: dict
archived_segment:
  description: The WAL segment the forced switch archived; null when not checked.
  returned: always
  type: str
verify_status:
  description: The status C(pgbackrest verify) printed (C(ok) or C(error)); null when not verified.
  returned: always
  type: str
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import pgbackrest as _pgbackrest

_ARCHIVED = re.compile(r"WAL segment (?P<segment>[0-9A-F]{24}) successfully archived")


def main():
    module = AnsibleModule(
        argument_spec=_pgbackrest.argument_spec(
            max_backup_age_hours=dict(type="float", default=26),
            max_full_age_hours=dict(type="float", default=192),
            archive_check=dict(type="bool", default=True),
            verify=dict(type="bool", default=True),
            fail_on_problem=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(
        changed=False,
        ok=False,
        checks=[],
        problems=[],
        backups=[],
        archive={},
        archived_segment=None,
        verify_status=None,
    )
    run = _pgbackrest.runner(module, result)

    archived = None
    if params["archive_check"] and not module.check_mode:
        rc, out, err = run("check", ["--log-level-console=info"], allow_failure=True)
        segment = _ARCHIVED.search(out + err)
        if rc == 0:
            result["archived_segment"] = segment.group("segment") if segment else None
            archived = {
                "ok": True,
                "detail": "a forced WAL switch arrived in the repository (%s)"
                % (result["archived_segment"] or "segment not named"),
            }
        else:
            failure = _pgbackrest.explain_failure(rc, out, err)
            archived = {"ok": False, "detail": "%s: %s. %s" % (failure.problem, failure.detail, failure.fix)}

    info = _pgbackrest.parse_info(run("info", ["--output=json"])[1], params["stanza"])
    result["backups"] = _pgbackrest.summarize_backups(info)
    archives = info.get("archive") or []
    if archives:
        result["archive"] = {"min": archives[-1].get("min"), "max": archives[-1].get("max")}

    verify = None
    if params["verify"] and (info.get("status") or {}).get("code") in (
        _pgbackrest.STATUS_OK,
        _pgbackrest.STATUS_NO_BACKUP,
    ):
        _rc, out, err = run(
            "verify", ["--output=text", "--verbose", "--log-level-console=warn"], allow_failure=True
        )
        verify = _pgbackrest.parse_verify(out)
        if _rc != 0 and verify["status"] == "unknown":
            failure = _pgbackrest.explain_failure(_rc, out, err)
            verify = {"status": "error", "problems": ["%s: %s" % (failure.problem, failure.detail)]}
        result["verify_status"] = verify["status"]

    checks = _pgbackrest.baseline_checks(
        info, verify, time.time(), params["max_backup_age_hours"], params["max_full_age_hours"], archived
    )
    problems = [check["detail"] for check in checks if not check["ok"]]
    result.update(checks=checks, problems=problems, ok=not problems)
    if problems and params["fail_on_problem"]:
        module.fail_json(
            msg="the backup baseline of stanza %s fails: %s" % (params["stanza"], "; ".join(problems)),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
