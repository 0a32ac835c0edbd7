#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_monitoring_user
short_description: Give an Odoo database a monitoring user that can log in and do nothing else
version_added: 0.1.0
description:
  - Creates the user O(login) in O(database) through Odoo's external API (C(/jsonrpc)), logged in as the
    administrator O(admin_login), with no group at all, so that a synthetic login probe proves the database,
    the registry and authentication work without holding any right on the data.
  - An existing user of that login is put right, reactivated, stripped of every group, and given
    O(password) when that password does not log it in (checked by a login, since Odoo never returns a
    password).
author:
  - sysgenpro platform engineering (@sysgenpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - sysgenpro.odoo_migration.odoo_api
attributes:
  check_mode:
    support: full
    details:
      - Check mode logs in and reads, and reports in RV(changes) what a real run would do.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  login:
    description: The monitoring user's login.
    type: str
    default: odoo-migration-monitor
  name:
    description: The monitoring user's display name (used when it is created).
    type: str
    default: Monitoring (sysgenpro.odoo_migration)
  password:
    description: The monitoring user's password.
    type: str
    required: true
  timeout:
    description: Seconds each request may take.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Give every database its monitoring user
  sysgenpro.odoo_migration.odoo_monitoring_user:
    url: https://erp.example.com
    database: "{{ item }}"
    admin_password: "{{ odoo_admin_password }}"
    password: "{{ monitoring_password }}"
  loop: [acme]
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
uid:
  description: The monitoring user's id; null when check mode predicts its creation.
  returned: always
  type: int
  sample: 7
changes:
  description: What was changed (in check mode, what a real run would change), in words.
  returned: always
  type: list
  elements: str
  sample: ["created odoo-migration-monitor without any group"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.admin_api import (
    admin_api_options,
    admin_client,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.monitoring_user import (
    MonitoringUserError,
    ensure_monitoring_user,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.smoke import SmokeError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **admin_api_options(),
            login=dict(type="str", default="odoo-migration-monitor"),
            name=dict(type="str", default="Monitoring (sysgenpro.odoo_migration)"),
            password=dict(type="str", required=True, no_log=True),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        client = admin_client(params, params["timeout"])
        changes, uid = ensure_monitoring_user(
            client,
            params["admin_login"],
            params["admin_password"],
            params["login"],
            params["password"],
            params["name"],
            check_mode=module.check_mode,
        )
    except (MonitoringUserError, SmokeError) as error:
        module.fail_json(msg="%s: %s" % (params["database"], error))
    module.exit_json(changed=bool(changes), uid=uid, changes=changes)


if __name__ == "__main__":
    main()
