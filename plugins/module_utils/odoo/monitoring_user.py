# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring user of an Odoo database: it logs in, and may do nothing else (no group at all)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.smoke import SmokeError


class MonitoringUserError(Exception):
    """The user cannot be checked or put right; the message says what to fix."""


def _groups_field(client):
    """Odoo 19 names the user's groups group_ids; earlier series groups_id."""
    fields = client.call("res.users", "fields_get", [["group_ids", "groups_id"]], {"attributes": ["type"]})
    for name in ("group_ids", "groups_id"):
        if name in fields:
            return name
    raise MonitoringUserError("res.users has neither group_ids nor groups_id: not an Odoo this module knows")


def ensure_monitoring_user(client, admin_login, admin_password, login, password, name, check_mode=False):
    """Create the user, or put it right (active, no group, this password). Returns (changes, uid): the changes
    in words, made (or, in check mode, that a run would make)."""
    try:
        if not client.api_login(admin_login, admin_password):
            raise MonitoringUserError(
                "%s refused the login of %s: give that administrator's password"
                % (client.database, admin_login)
            )
        groups = _groups_field(client)
        found = client.call(
            "res.users",
            "search_read",
            [[["login", "=", login]]],
            {"fields": ["id", "active", groups], "context": {"active_test": False}},
        )
        if not found:
            uid = None
            if not check_mode:
                uid = client.call(
                    "res.users",
                    "create",
                    [{"login": login, "name": name, "password": password, groups: [(6, 0, [])]}],
                )
            return ["created %s without any group" % login], uid
        user = found[0]
        update = {}
        changes = []
        if not user["active"]:
            update["active"] = True
            changes.append("reactivated %s" % login)
        if user[groups]:
            update[groups] = [(6, 0, [])]
            changes.append("removed %d group(s) from %s" % (len(user[groups]), login))
        # An inactive user cannot log in, so its password is only known once it is active again.
        if user["active"] and not client.service("common", "login", client.database, login, password):
            update["password"] = password
            changes.append("set the password of %s" % login)
        elif not user["active"]:
            update["password"] = password
        if update and not check_mode:
            client.call("res.users", "write", [[user["id"]], update])
        return changes, user["id"]
    except SmokeError as error:
        raise MonitoringUserError(str(error))
