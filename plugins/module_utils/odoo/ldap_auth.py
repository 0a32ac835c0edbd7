# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Odoo's own LDAP login (auth_ldap): the module installed and one directory configured, through its API."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.smoke import SmokeError


class LdapAuthError(Exception):
    """auth_ldap cannot be installed or configured; the message says what to fix."""


def _module_state(client):
    found = client.call(
        "ir.module.module", "search_read", [[["name", "=", "auth_ldap"]]], {"fields": ["state"]}
    )
    if not found:
        raise LdapAuthError(
            "%s does not know the module auth_ldap: its addons path lacks it" % client.database
        )
    return found[0]["id"], found[0]["state"]


def _call_when_loaded(client, model, method, args, kwargs=None, attempts=20):
    """After an install, a worker that has not reloaded its registry yet does not know the new model: ask
    again."""
    for attempt in range(attempts):
        try:
            return client.call(model, method, args, kwargs)
        except SmokeError as error:
            if model not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(1)


def ensure_ldap_auth(client, admin_login, admin_password, wanted, check_mode=False):
    """wanted: the res.company.ldap values (ldap_server, ldap_server_port, ldap_tls, ldap_binddn,
    ldap_password, ldap_base, ldap_filter, create_user). Returns (changes in words, the record's id or
    None)."""
    try:
        uid = client.api_login(admin_login, admin_password)
        if not uid:
            raise LdapAuthError(
                "%s refused the login of %s: give that administrator's password"
                % (client.database, admin_login)
            )
        # The directory serves the administrator's company.
        company = client.call("res.users", "read", [[uid]], {"fields": ["company_id"]})[0]["company_id"][0]
        wanted = dict(wanted, company=company)
        changes = []
        module_id, state = _module_state(client)
        if state != "installed":
            changes.append("installed auth_ldap")
            if check_mode:
                return changes + ["configured the directory %s" % wanted["ldap_server"]], None
            client.call("ir.module.module", "button_immediate_install", [[module_id]])
            if _module_state(client)[1] != "installed":
                raise LdapAuthError(
                    "%s: auth_ldap did not install (Odoo needs python-ldap, Debian's python3-ldap)"
                    % client.database
                )
        fields = sorted(name for name in wanted if name != "company")
        found = _call_when_loaded(
            client,
            "res.company.ldap",
            "search_read",
            [
                [
                    ["company", "=", company],
                    ["ldap_server", "=", wanted["ldap_server"]],
                    ["ldap_base", "=", wanted["ldap_base"]],
                ]
            ],
            {"fields": fields},
        )
        if not found:
            changes.append("configured the directory %s" % wanted["ldap_server"])
            record_id = None
            if not check_mode:
                record_id = client.call("res.company.ldap", "create", [dict(wanted)])
            return changes, record_id
        record = found[0]
        update = dict((name, wanted[name]) for name in fields if record.get(name) != wanted[name])
        if update:
            changes.append(
                "changed %s of the directory %s" % (", ".join(sorted(update)), wanted["ldap_server"])
            )
            if not check_mode:
                client.call("res.company.ldap", "write", [[record["id"]], update])
        return changes, record["id"]
    except SmokeError as error:
        raise LdapAuthError(str(error))
