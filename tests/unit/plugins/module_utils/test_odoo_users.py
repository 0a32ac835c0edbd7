"""The monitoring user and auth_ldap, against a fake Odoo that answers as Odoo 19's external API does:
check mode predicts and writes nothing, a second run changes nothing, bad credentials name the fix."""

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.ldap_auth import (
    LdapAuthError,
    ensure_ldap_auth,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.monitoring_user import (
    MonitoringUserError,
    ensure_monitoring_user,
)


class FakeOdoo:
    """Users, modules and LDAP settings of one database; logins checked against the stored passwords."""

    database = "acme"

    def __init__(self, auth_ldap="uninstalled"):
        self.users = {
            2: {"id": 2, "login": "admin", "password": "admin-pw", "active": True, "group_ids": [1]}
        }
        self.modules = {7: {"id": 7, "name": "auth_ldap", "state": auth_ldap}}
        self.ldap = {}
        self.writes = []

    def api_login(self, login, password):
        return self.service("common", "login", self.database, login, password)

    def service(self, service, method, database, login, password):
        for user in self.users.values():
            if user["login"] == login and user["password"] == password and user["active"]:
                return user["id"]
        return False

    def call(self, model, method, args, kwargs=None):
        kwargs = kwargs or {}
        if method == "fields_get":
            return {"group_ids": {"type": "many2many"}}
        table = {"res.users": self.users, "ir.module.module": self.modules, "res.company.ldap": self.ldap}[
            model
        ]
        if method == "search_read":
            found = [row for row in table.values() if all(row.get(f) == v for f, _op, v in args[0])]
            return [dict(row) for row in found]
        if method == "read":
            return [{"id": 2, "company_id": [1, "My Company"]}]
        self.writes.append((model, method))
        if method == "create":
            values = dict(args[0])
            if "group_ids" in values:
                values["group_ids"] = []
            row_id = max(table, default=0) + 1
            table[row_id] = dict(values, id=row_id, active=values.get("active", True))
            return row_id
        if method == "write":
            (row_id,), values = args
            values = dict(values)
            if "group_ids" in values:
                values["group_ids"] = []
            table[row_id].update(values)
            return True
        if method == "button_immediate_install":
            self.modules[7]["state"] = "installed"
            return True
        raise AssertionError(method)


def test_the_monitoring_user_is_created_without_groups_and_then_left_alone():
    odoo = FakeOdoo()
    changes, uid = ensure_monitoring_user(
        odoo, "admin", "admin-pw", "monitor", "m-pw", "Monitor", check_mode=True
    )
    assert changes == ["created monitor without any group"] and uid is None and odoo.writes == []
    changes, uid = ensure_monitoring_user(odoo, "admin", "admin-pw", "monitor", "m-pw", "Monitor")
    assert odoo.users[uid]["group_ids"] == [] and odoo.users[uid]["password"] == "m-pw"
    assert ensure_monitoring_user(odoo, "admin", "admin-pw", "monitor", "m-pw", "Monitor") == ([], uid)


def test_a_monitoring_user_with_groups_or_another_password_is_put_right():
    odoo = FakeOdoo()
    odoo.users[5] = {"id": 5, "login": "monitor", "password": "old", "active": True, "group_ids": [1, 9]}
    changes, _uid = ensure_monitoring_user(odoo, "admin", "admin-pw", "monitor", "m-pw", "Monitor")
    assert changes == ["removed 2 group(s) from monitor", "set the password of monitor"]
    assert odoo.users[5]["group_ids"] == [] and odoo.users[5]["password"] == "m-pw"


def test_a_wrong_admin_password_names_the_fix():
    with pytest.raises(
        MonitoringUserError, match="refused the login of admin: give that administrator's password"
    ):
        ensure_monitoring_user(FakeOdoo(), "admin", "wrong", "monitor", "m-pw", "Monitor")


WANTED = dict(
    ldap_server="directory",
    ldap_server_port=389,
    ldap_tls=True,
    ldap_binddn="cn=reader",
    ldap_password="r-pw",
    ldap_base="dc=lab",
    ldap_filter="(uid=%s)",
    create_user=False,
)


def test_auth_ldap_is_installed_and_configured_once():
    odoo = FakeOdoo()
    changes, record = ensure_ldap_auth(odoo, "admin", "admin-pw", WANTED, check_mode=True)
    assert changes == ["installed auth_ldap", "configured the directory directory"] and record is None
    assert odoo.writes == []
    changes, record = ensure_ldap_auth(odoo, "admin", "admin-pw", WANTED)
    assert changes == ["installed auth_ldap", "configured the directory directory"]
    assert odoo.ldap[record]["company"] == 1 and odoo.ldap[record]["ldap_tls"] is True
    assert ensure_ldap_auth(odoo, "admin", "admin-pw", WANTED) == ([], record)


def test_a_changed_directory_setting_is_written_and_named():
    odoo = FakeOdoo(auth_ldap="installed")
    _changes, record = ensure_ldap_auth(odoo, "admin", "admin-pw", WANTED)
    changes, _record = ensure_ldap_auth(odoo, "admin", "admin-pw", dict(WANTED, ldap_filter="(mail=%s)"))
    assert changes == ["changed ldap_filter of the directory directory"]
    assert odoo.ldap[record]["ldap_filter"] == "(mail=%s)"


def test_auth_ldap_that_does_not_install_says_what_odoo_needs():
    odoo = FakeOdoo()
    odoo.call = _refusing_install(odoo.call)
    with pytest.raises(LdapAuthError, match="python3-ldap"):
        ensure_ldap_auth(odoo, "admin", "admin-pw", WANTED)


def _refusing_install(call):
    def wrapped(model, method, args, kwargs=None):
        if method == "button_immediate_install":
            return True
        return call(model, method, args, kwargs)

    return wrapped
