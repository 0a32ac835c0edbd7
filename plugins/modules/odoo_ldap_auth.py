#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_ldap_auth
short_description: Let directory users log in to an Odoo database with Odoo's own auth_ldap
version_added: 0.1.0
description:
  - Installs Odoo's C(auth_ldap) module in O(database) when it is not installed, and configures one
    directory for the administrator's company (C(res.company.ldap)), through Odoo's external API as
    O(admin_login).
  - Directory users log in to the Odoo users of the same login with their directory password. With
    O(create_user), Odoo creates the user at the first login; Odoo 19 fails that creation at a login through
    its external API (on the lab it checks the new user's company against an empty user), so users
    are provisioned in Odoo, as they are where Odoo's groups are managed there.
  - C(auth_ldap) connects with C(ldap://) and, with O(start_tls), StartTLS; Odoo verifies the directory's
    certificate with the trust store of the host it runs on (a VM, or a container after the move).
  - The bind password is stored by Odoo in its database, as C(auth_ldap) does; it never appears in the output.
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
  server:
    description: The directory's host name as Odoo reaches it.
    type: str
    required: true
  port:
    description: The directory's LDAP port.
    type: int
    default: 389
  start_tls:
    description: Whether Odoo asks for StartTLS (it never sends a password over a clear connection then).
    type: bool
    default: true
  bind_dn:
    description: The account Odoo binds as to search; empty binds anonymously.
    type: str
    default: ""
  bind_password:
    description: That account's password.
    type: str
    default: ""
  base:
    description: Where Odoo searches for users.
    type: str
    required: true
  filter:
    description: The search filter; C(%s) stands for the login typed. It must find exactly one entry.
    type: str
    default: (&(objectClass=posixAccount)(uid=%s))
  create_user:
    description: Whether Odoo creates a directory user who logs in the first time (see the description).
    type: bool
    default: false
  timeout:
    description: Seconds each request may take (an install takes longer).
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Let directory users log in to Odoo
  sysgenpro.odoo_migration.odoo_ldap_auth:
    url: https://erp.example.com
    database: acme
    admin_password: "{{ odoo_admin_password }}"
    server: ldap.example.com
    bind_dn: cn=reader,ou=services,dc=example,dc=com
    bind_password: "{{ reader_password }}"
    base: ou=people,dc=example,dc=com
  delegate_to: localhost
"""

RETURN = r"""
id:
  description: The id of the C(res.company.ldap) record; null when check mode predicts its creation.
  returned: always
  type: int
  sample: 1
changes:
  description: What was changed (in check mode, what a real run would change), in words.
  returned: always
  type: list
  elements: str
  sample: ["installed auth_ldap", "configured the directory ldap.example.com"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.admin_api import (
    admin_api_options,
    admin_client,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.ldap_auth import (
    LdapAuthError,
    ensure_ldap_auth,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.smoke import SmokeError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **admin_api_options(),
            server=dict(type="str", required=True),
            port=dict(type="int", default=389),
            start_tls=dict(type="bool", default=True),
            bind_dn=dict(type="str", default=""),
            bind_password=dict(type="str", default="", no_log=True),
            base=dict(type="str", required=True),
            filter=dict(type="str", default="(&(objectClass=posixAccount)(uid=%s))"),
            create_user=dict(type="bool", default=False),
            timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    params = module.params
    wanted = dict(
        ldap_server=params["server"],
        ldap_server_port=params["port"],
        ldap_tls=params["start_tls"],
        ldap_binddn=params["bind_dn"] or False,
        ldap_password=params["bind_password"] or False,
        ldap_base=params["base"],
        ldap_filter=params["filter"],
        create_user=params["create_user"],
    )
    try:
        client = admin_client(params, params["timeout"])
        changes, record_id = ensure_ldap_auth(
            client,
            params["admin_login"],
            params["admin_password"],
            wanted,
            check_mode=module.check_mode,
        )
    except (LdapAuthError, SmokeError) as error:
        module.fail_json(msg="%s: %s" % (params["database"], error))
    module.exit_json(changed=bool(changes), id=record_id, changes=changes)


if __name__ == "__main__":
    main()
