"""Smoke checks decide on what Odoo answers; here Odoo's answers are given."""

import datetime
import hashlib

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils import _smoke


class FakeOdoo:
    def __init__(self, calls=None, pages=None, rpc=None):
        self.calls = calls or {}
        self.pages = pages or {}
        self.rpcs = rpc or {}

    def call(self, model, method, args, kwargs=None):
        return self.calls[model]

    def get(self, path, sessionless=False):
        return self.pages[path]

    def rpc(self, path, params):
        if path not in self.rpcs:
            raise _smoke.SmokeError(f"{path}: Session expired")
        return self.rpcs[path]


def test_attachment_is_proven_by_the_sha1_of_the_downloaded_bytes():
    body = b"%PDF-1.4 scan"
    good = FakeOdoo(
        calls={"ir.attachment": [{"id": 7, "checksum": hashlib.sha1(body).hexdigest(), "name": "scan.pdf"}]},
        pages={"/web/content/7?download=true": (200, {}, body)},
    )
    assert _smoke.check_attachment(good)[0] is True
    bad = FakeOdoo(calls=good.calls, pages={"/web/content/7?download=true": (200, {}, b"other bytes")})
    ok, detail = _smoke.check_attachment(bad)
    assert ok is False and "differs from checksum" in detail


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


def test_an_unfrozen_base_url_equal_to_the_url_used_is_reported():
    def client(values, headers=None):
        fake = FakeOdoo(calls={"ir.config_parameter": values})
        fake.base_url = "http://127.0.0.1:8061"
        fake.headers = headers or {}
        return fake

    rewritten = [{"key": "web.base.url", "value": "http://127.0.0.1:8061"}]
    assert _smoke.base_url_rewritten(client(rewritten)) == "http://127.0.0.1:8061"
    frozen = rewritten + [{"key": "web.base.url.freeze", "value": "True"}]
    assert _smoke.base_url_rewritten(client(frozen)) is None
    public = [{"key": "web.base.url", "value": "http://erp.example.com"}]
    assert _smoke.base_url_rewritten(client(public, {"Host": "erp.example.com"})) == "http://erp.example.com"
    assert _smoke.base_url_rewritten(client(public)) is None
