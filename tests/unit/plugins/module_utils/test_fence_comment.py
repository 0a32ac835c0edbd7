"""The fence record the engine writes in a role's comment, and the unfence that reads it back.

A fake server keeps what PostgreSQL would: cluster-wide roles (login, the default_transaction_read_only
setting, the comment) and each database's odoo_migration.fenced_roles rows. The engine's own statements
are applied to it, so the tests follow the record through two databases of one VM sharing Odoo's role.
"""

import contextlib
import json
import re

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover


class FakeCluster:
    def __init__(self, roles):
        self.roles = roles  # name -> {"login", "read_only", "comment"}
        self.fenced_rows = {}  # database -> {role: row}


class FakeSide:
    sysid = "7311"

    def __init__(self, cluster, database):
        self.cluster, self.database = cluster, database
        self.conn = self
        self.statements = []

    def transaction(self):
        return contextlib.nullcontext()

    def one(self, what, statement, params=None):
        if what == "reading the database":
            return {"name": self.database}
        if what.startswith("reading role"):
            role = self.cluster.roles.get(params[0])
            if role is None:
                return None
            return {"rolcanlogin": role["login"], "comment": role["comment"], "read_only": role["read_only"]}
        raise AssertionError(f"unexpected read: {what}")

    def run(self, what, statement, params=None):
        text = statement if isinstance(statement, str) else statement.as_string(None)
        self.statements.append(text)
        rows = self.cluster.fenced_rows.setdefault(self.database, {})
        roles = self.cluster.roles
        if text.startswith("SELECT c.relname FROM pg_class"):  # the helper tables exist
            return [{"relname": name} for name in _cutover.HELPER_TABLES]
        if text.startswith("SELECT fenced_on, role_name"):
            return [
                dict(fenced_on=self.sysid, role_name=name, rolcanlogin=row[0], read_only_setting=row[1])
                for name, row in sorted(rows.items())
            ]
        if text.startswith("INSERT INTO odoo_migration.fenced_roles"):
            rows.setdefault(params[1], (params[2], params[3]))
        elif text.startswith("DELETE FROM odoo_migration.fenced_roles"):
            rows.pop(params[1], None)
        elif match := re.match(r'COMMENT ON ROLE "(\w+)" IS (NULL|\'(.*)\')$', text, re.S):
            comment = None if match.group(2) == "NULL" else match.group(3).replace("''", "'")
            roles[match.group(1)]["comment"] = comment
        elif match := re.match(r'ALTER ROLE "(\w+)" (NOLOGIN|LOGIN)$', text):
            roles[match.group(1)]["login"] = match.group(2) == "LOGIN"
        elif match := re.match(r'ALTER ROLE "(\w+)" SET default_transaction_read_only = \'?(\w+)\'?$', text):
            roles[match.group(1)]["read_only"] = match.group(2)
        elif match := re.match(r'ALTER ROLE "(\w+)" RESET default_transaction_read_only$', text):
            roles[match.group(1)]["read_only"] = None
        else:
            raise AssertionError(f"unexpected statement: {text}")
        return []


def _cluster():
    return FakeCluster({"odoo": {"login": True, "read_only": None, "comment": "Odoo, owner: ops"}})


def test_the_fence_records_the_role_as_it_was_and_which_database_holds_it():
    cluster = _cluster()
    _cutover.fence_roles(FakeSide(cluster, "acme"), ["odoo"])
    role = cluster.roles["odoo"]
    assert (role["login"], role["read_only"]) == (False, "on")
    assert role["comment"].startswith(_cutover.FENCE_COMMENT_PREFIX)
    assert json.loads(role["comment"][len(_cutover.FENCE_COMMENT_PREFIX) :]) == {
        "comment": "Odoo, owner: ops",
        "holders": ["acme"],
        "login": True,
        "read_only": None,
    }
    assert cluster.fenced_rows["acme"] == {"odoo": (True, None)}


def test_a_second_database_joins_the_fence_without_losing_the_role_as_it_was():
    cluster = _cluster()
    _cutover.fence_roles(FakeSide(cluster, "acme"), ["odoo"])
    _cutover.fence_roles(FakeSide(cluster, "globex"), ["odoo"])
    record = _cutover.parse_fence_comment(cluster.roles["odoo"]["comment"])
    assert record["holders"] == ["acme", "globex"]
    # What the second fence found was the fenced role: the record keeps the role as it was before.
    assert (record["login"], record["read_only"], record["comment"]) == (True, None, "Odoo, owner: ops")
    assert cluster.fenced_rows["globex"] == {"odoo": (True, None)}


def test_the_role_comes_back_only_when_the_last_database_lets_go():
    cluster = _cluster()
    for database in ("acme", "globex"):
        _cutover.fence_roles(FakeSide(cluster, database), ["odoo"])
    assert _cutover.unfence_roles(FakeSide(cluster, "acme")) == ["odoo"]
    role = cluster.roles["odoo"]
    # globex still holds it: still fenced, and the record says who holds it.
    assert (role["login"], role["read_only"]) == (False, "on")
    assert _cutover.parse_fence_comment(role["comment"])["holders"] == ["globex"]
    assert cluster.fenced_rows["acme"] == {}
    assert _cutover.unfence_roles(FakeSide(cluster, "globex")) == ["odoo"]
    assert role == {"login": True, "read_only": None, "comment": "Odoo, owner: ops"}
    # Nothing left to let go of.
    assert _cutover.unfence_roles(FakeSide(cluster, "globex")) == []


def test_a_role_that_was_read_only_and_nologin_before_is_restored_as_it_was():
    cluster = FakeCluster({"report": {"login": False, "read_only": "on", "comment": None}})
    _cutover.fence_roles(FakeSide(cluster, "acme"), ["report", "missing_role"])
    assert _cutover.unfence_roles(FakeSide(cluster, "acme")) == ["report"]
    assert cluster.roles["report"] == {"login": False, "read_only": "on", "comment": None}


def test_a_fence_from_before_records_were_kept_is_restored_from_its_row():
    cluster = _cluster()
    cluster.roles["odoo"].update(login=False, read_only="on")
    cluster.fenced_rows["acme"] = {"odoo": (True, None)}
    assert _cutover.unfence_roles(FakeSide(cluster, "acme")) == ["odoo"]
    assert (cluster.roles["odoo"]["login"], cluster.roles["odoo"]["read_only"]) == (True, None)


def test_an_operator_comment_is_not_a_fence():
    assert _cutover.parse_fence_comment("Odoo application role, owner: ops") is None
    assert _cutover.parse_fence_comment(" odoo-migration-fence:{}") is None
    assert _cutover.parse_fence_comment(None) is None
    assert _cutover.parse_fence_comment("") is None
