#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_backup_stanza
short_description: Prove that a pgBackRest configuration reaches its repository, and create the stanza
version_added: 0.2.0
description:
  - Runs on the VM, as the PostgreSQL owner. Reads the stanza with C(pgbackrest info --output=json)
    through the configuration given (which may be a candidate not installed yet). A store that does not
    answer, a key it refuses, a missing bucket, an untrusted certificate or a passphrase that does not
    open the repository fails here, with what is wrong and how to fix it, before PostgreSQL is pointed
    at the repository.
  - Creates the stanza (C(stanza-create)) when the repository has none; an existing stanza is left as it is.
  - pgBackRest's C(info) exits 0 for a stanza that does not exist, so the verdict is read from its
    status code.
author:
  - sysgenpro platform engineering (@sysgenpro)
options:
  config_include_path:
    description: The directory of extra configuration files (the repository's key and passphrase).
    type: path
  endpoint:
    description: The store's address, named in error messages only.
    type: str
  io_timeout:
    description:
      - Seconds pgBackRest waits for the store while this module asks it (C(--io-timeout)); pgBackRest
        retries twice, so a store that does not answer fails after about three times this.
    type: int
    default: 10
extends_documentation_fragment:
  - sysgenpro.odoo_migration.pgbackrest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the repository (so a store that does not answer fails in check mode too) and reports whether
        the stanza would be created.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: sysgenpro.odoo_migration.pg_backup_check
"""

EXAMPLES = r"""
- name: Prove the candidate configuration and create the stanza
  sysgenpro.odoo_migration.pg_backup_stanza:
    stanza: legacy-vm-1
    config: /etc/pgbackrest/candidate/pgbackrest.conf
    config_include_path: /etc/pgbackrest/candidate/conf.d
    endpoint: s3.example.internal:443
  become: true
  become_user: postgres
"""

RETURN = r"""
stanza:
  description: The stanza's name.
  returned: always
  type: str
created:
  description: Whether the stanza was created by this run (in check mode, whether it would be).
  returned: always
  type: bool
status_code:
  description:
    - The stanza's status code from pgBackRest's info before this run (0 ok, 1 and 3 absent, 2 no backup).
  returned: always
  type: int
status_message:
  description: pgBackRest's message for that status.
  returned: always
  type: str
backups:
  description: How many backups the repository holds for the stanza.
  returned: always
  type: int
cipher:
  description:
    - The repository's cipher as pgBackRest reports it (C(aes-256-cbc) when encrypted); null before the
      stanza exists.
  returned: always
  type: str
problem:
  description: What is wrong when the repository cannot be used; null otherwise.
  returned: always
  type: str
fix:
  description: What to do about RV(problem); null otherwise.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import pgbackrest as _pgbackrest


def main():
    module = AnsibleModule(
        argument_spec=_pgbackrest.argument_spec(
            config_include_path=dict(type="path"),
            endpoint=dict(type="str"),
            io_timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(
        changed=False,
        stanza=params["stanza"],
        created=False,
        status_code=None,
        status_message=None,
        backups=0,
        cipher=None,
        problem=None,
        fix=None,
    )
    run = _pgbackrest.runner(module, result, params["config_include_path"], params["endpoint"])

    # A store that does not answer is retried by pgBackRest for minutes at its default timeout.
    probe = ["--output=json", "--io-timeout=%d" % params["io_timeout"]]
    info = _pgbackrest.parse_info(run("info", probe)[1], params["stanza"])
    status = info.get("status") or {}
    result.update(
        status_code=status.get("code"),
        status_message=status.get("message"),
        backups=len(info.get("backup") or []),
        cipher=info.get("cipher"),
    )
    if result["status_code"] in _pgbackrest.STANZA_ABSENT:
        result.update(changed=True, created=True)
        if not module.check_mode:
            run("stanza-create", ["--log-level-console=warn"])
            info = _pgbackrest.parse_info(run("info", ["--output=json"])[1], params["stanza"])
            result["cipher"] = info.get("cipher")
    elif result["status_code"] not in (_pgbackrest.STATUS_OK, _pgbackrest.STATUS_NO_BACKUP):
        failure = _pgbackrest.explain_repository_status(info, params["endpoint"])
        if failure is not None:
            _pgbackrest.fail(module, result, failure)
        result.update(
            problem="the repository's stanza is not usable: %s" % result["status_message"],
            fix="Read `pgbackrest --stanza=%s info` on the VM; a stanza made for another cluster "
            "needs its own repository path." % params["stanza"],
        )
        module.fail_json(msg="%s. %s" % (result["problem"], result["fix"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
