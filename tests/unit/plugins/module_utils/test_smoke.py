"""Smoke checks decide on what Odoo answers; here Odoo's answers are given."""

import base64
import datetime
import hashlib

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import smoke as _smoke


class FakeOdoo:
    """Odoo's answers: model calls by (model, method), pages by path, JSON-RPC routes by path."""

    def __init__(self, calls=None, pages=None, rpc=None, base_url="http://127.0.0.1:8061", headers=None):
        self.calls = calls or {}
        self.pages = pages or {}
        self.rpcs = rpc or {}
        self.base_url = base_url
        self.headers = headers or {}
        self.wrote = []
        self.web_session = None
        self.posted = []
        self.database = "acme"

    def call(self, model, method, args, kwargs=None):
        answer = self.calls.get((model, method), self.calls.get(model))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, path, sessionless=False):
        return self.pages[path]

    def rpc(self, path, params):
        self.posted.append(path)
        if path not in self.rpcs:
            raise _smoke.SmokeError(f"{path}: Session expired")
        return self.rpcs[path]

    base_location = _smoke.OdooClient.base_location


BODY = b"%PDF-1.4 scan"
ATTACHMENT = [{"id": 7, "checksum": hashlib.sha1(BODY).hexdigest(), "name": "scan.pdf"}]


def test_attachment_is_proven_by_the_sha1_of_the_downloaded_bytes():
    setting = [{"key": "web.base.url", "value": "http://erp.example.com"}]
    good = FakeOdoo(
        calls={"ir.attachment": ATTACHMENT, "ir.config_parameter": setting},
        pages={"/web/content/7?download=true": (200, {}, BODY)},
        rpc={"/web/session/authenticate": {"uid": 2}},
        headers={"Host": "erp.example.com"},
    )
    ok, detail = _smoke.check_attachment(good, None, "admin", "pw")
    assert (
        ok is True
        and "HTTP 200" in detail
        and good.wrote == ["res_users_log: one row (the web login of admin)"]
    )
    bad = FakeOdoo(
        calls=good.calls,
        pages={"/web/content/7?download=true": (200, {}, b"other bytes")},
        rpc=good.rpcs,
        headers=good.headers,
    )
    ok, detail = _smoke.check_attachment(bad, None, "admin", "pw")
    assert ok is False and "differs from checksum" in detail


def test_a_web_login_that_would_rewrite_the_base_url_is_not_made():
    """An administrator's web login through another name would store it as web.base.url: the bytes are
    read through the external API instead, and no web login is posted."""
    setting = [{"key": "web.base.url", "value": "http://erp.example.com"}]
    odoo = FakeOdoo(
        calls={
            ("ir.attachment", "search_read"): ATTACHMENT,
            ("ir.attachment", "read"): [{"datas": base64.b64encode(BODY).decode()}],
            "ir.config_parameter": setting,
        },
        rpc={"/web/session/authenticate": {"uid": 2}},
    )
    ok, detail = _smoke.check_attachment(odoo, None, "admin", "pw")
    assert ok is True and "read through the external API" in detail
    assert "would rewrite web.base.url (http://erp.example.com)" in detail
    assert "/web/session/authenticate" not in odoo.posted and odoo.wrote == []
    # Frozen, or a login that may not read the setting (not an administrator): the web login is safe.
    frozen = setting + [{"key": "web.base.url.freeze", "value": "True"}]
    assert (
        _smoke.open_web_session(FakeOdoo(calls={"ir.config_parameter": frozen}, rpc=odoo.rpcs), "a", "p")
        is None
    )
    denied = FakeOdoo(calls={"ir.config_parameter": _smoke.SmokeError("Access Denied")}, rpc=odoo.rpcs)
    assert _smoke.open_web_session(denied, "a", "p") is None


def test_the_base_location_is_what_odoo_would_store():
    assert FakeOdoo(base_url="http://127.0.0.1:8061").base_location() == "http://127.0.0.1:8061"
    proxied = FakeOdoo(base_url="https://10.0.4.21", headers={"Host": "erp.example.com"})
    assert proxied.base_location() == "https://erp.example.com"


def test_cron_age_uses_the_newest_run():
    crons = [
        {"cron_name": "old", "lastcall": "2026-11-23 06:00:00"},
        {"cron_name": "tick", "lastcall": "2026-11-23 06:58:30"},
        {"cron_name": "never", "lastcall": False},
    ]
    now = datetime.datetime(2026, 11, 23, 7, 0, 0)
    ok, detail = _smoke.check_cron(FakeOdoo(calls={"ir.cron": crons}), 5, now=now)
    assert ok is True and detail.startswith("tick ran 1.5 min ago")
    assert _smoke.check_cron(FakeOdoo(calls={"ir.cron": crons}), 1, now=now)[0] is False
    assert _smoke.check_cron(FakeOdoo(calls={"ir.cron": [crons[2]]}), 5, now=now) == (
        False,
        "no active cron has run yet",
    )


def test_every_check_runs_and_transport_errors_become_failed_checks():
    client = FakeOdoo(pages={"/web/health": (200, {}, b"ok")})
    plan = [
        ("health", _smoke.check_health, ()),
        ("version", _smoke.check_version, ("19.0",)),
        ("health again", _smoke.check_health, ()),
    ]
    results = _smoke.run_checks(client, plan)
    assert [(item["name"], item["ok"]) for item in results] == [
        ("health", True), ("version", False), ("health again", True),
    ]  # fmt: skip
    assert "Session expired" in results[1]["detail"]
