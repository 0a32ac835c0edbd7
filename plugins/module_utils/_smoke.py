# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke tests an operator would run by hand after a move, through Odoo's own HTTP API.

Each check returns (ok, detail); the runner times them. Only the standard library is used,
so the module runs on any controller or on the Docker host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os
import ssl
import time
from http.cookiejar import CookieJar
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPCookieProcessor, HTTPSHandler, Request, build_opener


class SmokeError(Exception):
    """A check could not run (transport or protocol error)."""


class _ServerNameContext(ssl.SSLContext):
    """TLS to server_name (SNI, and the name the certificate must carry), whatever address is dialled."""

    server_name = None

    def wrap_socket(self, sock, *args, **kwargs):
        if self.server_name:
            kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(ca_path=None, server_name=None):
    """Certificate and host name always verified: against the PEM bundle ca_path only, or the system's store.

    A bundle that is missing, unreadable or holds no certificate raises SmokeError naming it.
    """
    context = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.server_name = server_name
    if not ca_path:
        context.load_default_certs()
        return context
    fix = (
        "give the PEM bundle of the CA that signed the server's certificate, on the host this module runs on"
    )
    if not os.path.isfile(ca_path):
        raise SmokeError("ca_path %s does not exist or is not a file; %s" % (ca_path, fix))
    try:
        context.load_verify_locations(cafile=ca_path)
    except (OSError, ssl.SSLError) as error:
        raise SmokeError("ca_path %s: not a readable PEM CA bundle (%s); %s" % (ca_path, error, fix))
    return context


def _transport_error(error):
    """The reason, and for a refused certificate what to give so that it verifies."""
    reason = getattr(error, "reason", error)
    if not isinstance(reason, ssl.SSLCertVerificationError):
        return reason
    if "mismatch" in str(reason.verify_message):
        return "%s (the certificate must name the Host header's host, or the URL's without one)" % reason
    return "%s (signed by a private CA? give its PEM bundle as ca_path)" % reason


class OdooClient:
    """A browser-like session against one Odoo: cookies, JSON-RPC, raw GETs."""

    def __init__(self, base_url, database=None, headers=None, timeout=30, ca_path=None):
        self.base_url = base_url.rstrip("/")
        self.database = database
        self.headers = dict(headers or {})
        # Routes without a session (websocket health on a multi-database server) take the database
        # from this header; Odoo 18+ then answers without a session, so it is sent only there.
        self.database_header = {"X-Odoo-Database": database} if database else {}
        self.timeout = timeout
        # Over HTTPS the Host header is also the TLS name, as for a browser that resolved it to this address.
        server_name = urlsplit("//" + self.headers["Host"]).hostname if self.headers.get("Host") else None
        self.opener = build_opener(
            HTTPCookieProcessor(CookieJar()), HTTPSHandler(context=tls_context(ca_path, server_name))
        )

    def get(self, path, sessionless=False):
        headers = dict(self.headers, **self.database_header) if sessionless else self.headers
        request = Request(self.base_url + path, headers=headers)
        try:
            response = self.opener.open(request, timeout=self.timeout)
            return response.status, dict(response.headers), response.read()
        except HTTPError as error:
            return error.code, dict(error.headers), error.read()
        except URLError as error:
            raise SmokeError("GET %s%s failed: %s" % (self.base_url, path, _transport_error(error)))

    def rpc(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}).encode()
        headers = dict(self.headers, **{"Content-Type": "application/json"})
        request = Request(self.base_url + path, data=body, headers=headers)
        try:
            response = self.opener.open(request, timeout=self.timeout)
            answer = json.loads(response.read())
        except HTTPError as error:
            raise SmokeError("POST %s answered HTTP %s" % (path, error.code))
        except (URLError, ValueError) as error:
            raise SmokeError("POST %s failed: %s" % (path, _transport_error(error)))
        if answer.get("error"):
            data = answer["error"].get("data") or {}
            raise SmokeError("%s: %s" % (path, data.get("message") or answer["error"].get("message")))
        return answer.get("result")

    def call(self, model, method, args, kwargs=None):
        return self.rpc(
            "/web/dataset/call_kw/%s/%s" % (model, method),
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )


def check_health(client):
    status, _headers, body = client.get("/web/health", sessionless=True)
    return status == 200, "HTTP %s %s" % (status, body[:80].decode("utf-8", "replace"))


def check_version(client, expected):
    info = client.rpc("/web/webclient/version_info", {})
    series = str(info.get("server_serie"))
    ok = not expected or series == str(expected) or str(info.get("server_version")).startswith(str(expected))
    return ok, "server %s (series %s)%s" % (
        info.get("server_version"),
        series,
        "" if ok else ", expected %s" % expected,
    )


def check_login(client, login, password):
    result = client.rpc(
        "/web/session/authenticate", {"db": client.database, "login": login, "password": password}
    )
    uid = (result or {}).get("uid")
    return bool(uid), "uid %s in %s" % (uid, client.database) if uid else "login refused for %s" % login


def base_url_rewritten(client):
    """Odoo rewrites web.base.url to the URL an admin logged in through unless it is frozen: say so."""
    values = client.call(
        "ir.config_parameter",
        "search_read",
        [[["key", "in", ["web.base.url", "web.base.url.freeze"]]]],
        {"fields": ["key", "value"]},
    )
    found = dict((item["key"], item["value"]) for item in values)
    frozen = str(found.get("web.base.url.freeze", "")).lower() in ("1", "true")
    used = client.base_url.split("://", 1)[-1].split("/")[0]
    host = client.headers.get("Host", used)
    current = found.get("web.base.url", "")
    if frozen or not current.split("://", 1)[-1].startswith(host):
        return None
    return current


def check_attachment(client, attachment_id=None):
    """Fetch one stored attachment and compare the SHA-1 of the bytes with ir.attachment.checksum."""
    domain = [["store_fname", "!=", False], ["type", "=", "binary"], ["res_field", "=", False]]
    if attachment_id:
        domain = [["id", "=", int(attachment_id)]]
    found = client.call(
        "ir.attachment", "search_read", [domain], {"fields": ["id", "checksum", "name"], "limit": 1}
    )
    if not found:
        return False, "no stored attachment to fetch"
    record = found[0]
    status, _headers, body = client.get("/web/content/%d?download=true" % record["id"])
    digest = hashlib.sha1(body).hexdigest()
    ok = status == 200 and digest == record["checksum"]
    return ok, "attachment %d (%s): HTTP %s, sha1 %s %s checksum" % (
        record["id"],
        record["name"],
        status,
        digest[:12],
        "equals" if ok else "differs from",
    )


def check_cron(client, max_age_minutes, now=None):
    crons = client.call(
        "ir.cron", "search_read", [[["active", "=", True]]], {"fields": ["cron_name", "lastcall"], "limit": 0}
    )
    ran = [cron for cron in crons if cron.get("lastcall")]
    if not ran:
        return False, "no active cron has run yet"
    latest = max(ran, key=lambda cron: cron["lastcall"])
    moment = datetime.datetime.strptime(latest["lastcall"], "%Y-%m-%d %H:%M:%S")
    current = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    age = (current - moment).total_seconds() / 60.0
    return age <= max_age_minutes, "%s ran %.1f min ago (limit %s)" % (
        latest["cron_name"],
        age,
        max_age_minutes,
    )


def check_websocket(client):
    status, _headers, body = client.get("/websocket/health", sessionless=True)
    return status == 200, "HTTP %s %s" % (status, body[:40].decode("utf-8", "replace"))


def run_checks(client, plan):
    """plan: list of (name, callable, args). Returns the list of results, every check run."""
    results = []
    for name, check, args in plan:
        started = time.monotonic()
        try:
            ok, detail = check(client, *args)
        except SmokeError as error:
            ok, detail = False, str(error)
        results.append(
            {"name": name, "ok": bool(ok), "detail": detail, "seconds": round(time.monotonic() - started, 3)}
        )
    return results
