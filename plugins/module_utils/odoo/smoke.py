# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke tests an operator would run by hand after a move, through Odoo's own HTTP API.

Each check returns (ok, detail); the runner times them. Only the standard library is used,
so the module runs on any controller or on the Docker host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
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
        # (uid, password) after api_login; what the checks wrote, in words.
        self.credentials = None
        self.wrote = []
        self.web_session = None

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

    def service(self, service, method, *args):
        """Odoo's external API (/jsonrpc): no session and no cookie; a login there never rewrites
        web.base.url (it carries no base location)."""
        return self.rpc("/jsonrpc", {"service": service, "method": method, "args": list(args)})

    def api_login(self, login, password):
        """The uid for login, checked by Odoo's own authentication (it writes one res_users_log row)."""
        uid = self.service("common", "login", self.database, login, password)
        if uid:
            self.credentials = (uid, password)
            self.wrote.append("res_users_log: one row (the login of %s)" % login)
        return uid

    def call(self, model, method, args, kwargs=None):
        """A model method, through the external API with the login's credentials (reads write nothing)."""
        if not self.credentials:
            raise SmokeError("%s.%s needs a login first" % (model, method))
        uid, password = self.credentials
        return self.service(
            "object", "execute_kw", self.database, uid, password, model, method, args, kwargs or {}
        )

    def base_location(self):
        """The URL a web login through this client would store as web.base.url (Odoo's url_root)."""
        scheme = self.headers.get("X-Forwarded-Proto") or urlsplit(self.base_url).scheme
        host = (
            self.headers.get("X-Forwarded-Host") or self.headers.get("Host") or urlsplit(self.base_url).netloc
        )
        return "%s://%s" % (scheme, host)


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
    """A real login, checked by Odoo's authentication through the external API (never a web login, which
    would store the URL it came through as web.base.url)."""
    uid = client.api_login(login, password)
    return bool(uid), "uid %s in %s" % (uid, client.database) if uid else "login refused for %s" % login


def base_url_setting(client):
    """{value, frozen} of web.base.url, or None when the login may not read it (not an administrator:
    a web login of such a user never rewrites it)."""
    try:
        values = client.call(
            "ir.config_parameter",
            "search_read",
            [[["key", "in", ["web.base.url", "web.base.url.freeze"]]]],
            {"fields": ["key", "value"]},
        )
    except SmokeError:
        return None
    found = dict((item["key"], item["value"]) for item in values)
    return dict(
        value=found.get("web.base.url", ""),
        frozen=str(found.get("web.base.url.freeze", "")).lower() in ("1", "true"),
    )


def open_web_session(client, login, password):
    """Log in through /web/session/authenticate, as a browser does, unless that would rewrite
    web.base.url (an administrator's web login stores the URL it came through when the setting is not
    frozen). Returns None when the session is open, else why it was not opened."""
    if client.web_session is not None:
        return client.web_session
    setting = base_url_setting(client)
    location = client.base_location()
    if setting is not None and not setting["frozen"] and setting["value"] != location:
        client.web_session = (
            "a web login through %s would rewrite web.base.url (%s); send the public Host header "
            "(option headers) or set web.base.url.freeze" % (location, setting["value"])
        )
        return client.web_session
    result = client.rpc(
        "/web/session/authenticate", {"db": client.database, "login": login, "password": password}
    )
    if not (result or {}).get("uid"):
        client.web_session = "the web login of %s was refused" % login
        return client.web_session
    client.wrote.append("res_users_log: one row (the web login of %s)" % login)
    client.web_session = None
    return None


def check_attachment(client, attachment_id=None, login=None, password=None):
    """Fetch one stored attachment and compare the SHA-1 of the bytes with ir.attachment.checksum:
    downloaded over HTTP in a web session, else (a web login would rewrite web.base.url) read through
    the external API."""
    domain = [["store_fname", "!=", False], ["type", "=", "binary"], ["res_field", "=", False]]
    if attachment_id:
        domain = [["id", "=", int(attachment_id)]]
    found = client.call(
        "ir.attachment", "search_read", [domain], {"fields": ["id", "checksum", "name"], "limit": 1}
    )
    if not found:
        return False, "no stored attachment to fetch"
    record = found[0]
    refused = open_web_session(client, login, password) if login else "no login given"
    if refused is None:
        status, _headers, body = client.get("/web/content/%d?download=true" % record["id"])
        how = "HTTP %s" % status
    else:
        rows = client.call("ir.attachment", "read", [[record["id"]]], {"fields": ["datas"]})
        body = base64.b64decode((rows[0].get("datas") if rows else "") or "")
        status, how = 200, "read through the external API (%s)" % refused
    digest = hashlib.sha1(body).hexdigest()
    ok = status == 200 and digest == record["checksum"]
    return ok, "attachment %d (%s): %s, sha1 %s %s checksum" % (
        record["id"],
        record["name"],
        how,
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
