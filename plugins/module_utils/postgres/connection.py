# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connections for this collection's modules (psycopg 3), private.

A PgEndpoint says where to connect and describes itself without its password. connect()
opens a connection with an application_name, a statement and a lock timeout; when it
cannot connect it raises PgConnectError whose message names host, port, user and
database and says what to check, with the password removed from psycopg's text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re
import traceback

try:
    import psycopg
    from psycopg.conninfo import make_conninfo
    from psycopg.rows import dict_row
except ImportError:
    psycopg = None
    dict_row = None
    make_conninfo = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None

try:
    from urllib.parse import quote as _url_quote
    from urllib.parse import unquote as _url_unquote
except ImportError:  # pragma: no cover - Python 2 only
    from urllib import quote as _url_quote
    from urllib import unquote as _url_unquote

REDACTED = "********"
DEFAULT_APPLICATION_NAME = "odoo_migration"
DEFAULT_STATEMENT_TIMEOUT_MS = 60000
DEFAULT_LOCK_TIMEOUT_MS = 10000
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CONNECT_ADVICE = (
    "Check that host and port are right and PostgreSQL listens there (listen_addresses, firewall), "
    "that pg_hba.conf has a line allowing this client for that user and database, "
    "and that user and password are right."
)


class PgError(Exception):
    """A PostgreSQL operation failed; the message is safe to show (no password)."""


class PgConnectError(PgError):
    """The server cannot be reached or refuses the login."""


class PgEndpoint:
    """Where to connect: host, port, user, password, database, sslmode, connect_timeout."""

    __slots__ = ("host", "port", "user", "password", "database", "sslmode", "connect_timeout")

    def __init__(
        self, host, database, port=5432, user="postgres", password=None, sslmode="prefer", connect_timeout=10
    ):
        self.host = host
        self.port = int(port)
        self.user = user
        self.password = password or None
        self.database = database
        self.sslmode = sslmode or "prefer"
        self.connect_timeout = int(connect_timeout)

    @classmethod
    def from_params(cls, params, default_database=None):
        """Build from a module's connection suboptions (a dict as AnsibleModule parsed it)."""
        return cls(
            host=params["host"],
            database=params.get("database") or default_database,
            port=params.get("port") or 5432,
            user=params.get("user") or "postgres",
            password=params.get("password"),
            sslmode=params.get("sslmode") or "prefer",
            connect_timeout=params.get("connect_timeout") or 10,
        )

    def with_database(self, database):
        """The same server and login, another database."""
        return PgEndpoint(
            self.host, database, self.port, self.user, self.password, self.sslmode, self.connect_timeout
        )

    def describe(self):
        """'host:port as user, database db' (never the password)."""
        return "%s:%s as %s, database %s" % (self.host, self.port, self.user, self.database)

    def connect_kwargs(self, application_name=DEFAULT_APPLICATION_NAME):
        """Keyword arguments for psycopg.connect()."""
        kwargs = dict(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=self.database,
            sslmode=self.sslmode,
            connect_timeout=self.connect_timeout,
            application_name=application_name,
        )
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    def __repr__(self):
        return "PgEndpoint(%s)" % self.describe()

    __str__ = describe


def secret_forms(secret):
    """The ways a secret can appear in an error text: as is, conninfo-escaped, URL-encoded."""
    if not secret:
        return []
    forms = set([secret, secret.replace("\\", "\\\\").replace("'", "\\'"), _url_quote(secret, safe="")])
    # Longest first, so a form that contains another is replaced whole.
    return sorted(forms, key=len, reverse=True)


def redact(text, secrets):
    """Return text with every form of every secret replaced by ********."""
    text = "" if text is None else str(text)
    for secret in secrets:
        for form in secret_forms(secret):
            text = text.replace(form, REDACTED)
    return text


def error_text(error, secrets=()):
    """psycopg's message on one line, without any secret."""
    return re.sub(r"\s+", " ", redact(error, secrets)).strip()


def connect_failure_message(endpoint, error):
    """The message for a failed connection: where, as whom, what the server said, what to check."""
    text = error_text(error, [endpoint.password])
    ending = "" if text.endswith((".", "?", "!")) else "."
    return "cannot connect to PostgreSQL at %s: %s%s %s" % (endpoint.describe(), text, ending, CONNECT_ADVICE)


def query_failure_message(endpoint, step, error):
    """The message for a failed query on an open connection."""
    return "PostgreSQL at %s failed while reading %s: %s" % (
        endpoint.describe(),
        step,
        error_text(error, [endpoint.password]),
    )


def require_psycopg():
    if not HAS_PSYCOPG:
        raise PgError("psycopg 3 (Python package 'psycopg') is required on the node that runs this module")


def connect(
    endpoint,
    application_name=DEFAULT_APPLICATION_NAME,
    statement_timeout_ms=DEFAULT_STATEMENT_TIMEOUT_MS,
    lock_timeout_ms=DEFAULT_LOCK_TIMEOUT_MS,
):
    """Open an autocommit connection (rows as dicts) with timeouts set for the session.

    Callers open transactions with `with conn.transaction():`; the connection's
    isolation_level and read_only attributes decide how they begin.
    """
    require_psycopg()
    try:
        conn = psycopg.connect(
            autocommit=True, row_factory=dict_row, **endpoint.connect_kwargs(application_name)
        )
    except psycopg.Error as error:
        # "from None": psycopg's own exception (and its text) stays out of any traceback.
        raise PgConnectError(connect_failure_message(endpoint, error)) from None
    try:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
            (str(int(statement_timeout_ms)), str(int(lock_timeout_ms))),
        )
    except psycopg.Error as error:
        conn.close()
        raise PgError(query_failure_message(endpoint, "session settings", error)) from None
    return conn


def endpoint_options(database_required=True, database_default=None):
    """Argument spec of a module's source/target connection option (every PostgreSQL module shares it)."""
    options = dict(
        host=dict(type="str", required=True),
        port=dict(type="int", default=5432),
        user=dict(type="str", default="postgres"),
        password=dict(type="str", no_log=True),
        sslmode=dict(type="str", default="prefer", choices=list(SSLMODES)),
        connect_timeout=dict(type="int", default=10),
    )
    if database_required:
        options["database"] = dict(type="str", required=True)
    elif database_default is None:
        options["database"] = dict(type="str")
    else:
        options["database"] = dict(type="str", default=database_default)
    return options


# Settings that keep a statement's text out of the server's log and statistics, even when it fails
# (PostgreSQL logs a failing statement by default: log_min_error_statement = error).
QUIET_SETTINGS = (
    ("log_statement", "none"),
    ("log_min_error_statement", "panic"),
    ("log_min_duration_statement", "-1"),
    ("pg_stat_statements.track_utility", "off"),
)


def execute_with_secret(conn, statement, params=None):
    """Run a statement that carries a secret (a password, a conninfo) in one transaction whose
    settings keep its text out of the server log; return the cursor. A setting this login may not
    change is left as it is (the statement still runs)."""
    require_psycopg()
    with conn.transaction():
        for name, value in QUIET_SETTINGS:
            try:
                with conn.transaction():
                    conn.execute("SELECT set_config(%s, %s, true)", (name, value))
            except psycopg.Error:
                pass
        return conn.execute(statement, params)


SCRAM_ITERATIONS = 4096


def scram_verifier(password, salt=None, iterations=SCRAM_ITERATIONS):
    """The SCRAM-SHA-256 verifier PostgreSQL stores for password (RFC 7677). Sent as the role's password,
    the server keeps it as it is: the clear text never reaches the server, its log or its statistics."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (
        iterations,
        _base64(salt),
        _base64(stored_key),
        _base64(server_key),
    )


def _base64(raw):
    return base64.b64encode(raw).decode("ascii")


def scram_matches(verifier, password):
    """Whether a stored SCRAM-SHA-256 verifier is the one of password (same salt and iterations)."""
    match = re.match(r"^SCRAM-SHA-256\$(\d+):([^$]+)\$", verifier or "")
    if not match:
        return False
    again = scram_verifier(password, base64.b64decode(match.group(2)), int(match.group(1)))
    return hmac.compare_digest(again, verifier)


def conninfo_with_login(conninfo, user, password):
    """A libpq connection string with its user and password replaced (psycopg's conninfo rules)."""
    require_psycopg()
    return make_conninfo(conninfo or "", user=user, password=password)


# --------------------------------------------------------------------------------------
# Secrets in connection strings
# --------------------------------------------------------------------------------------

_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"^(postgres(?:ql)?://[^:/@]*:)([^@]*)(@)", re.IGNORECASE)
_URI_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&]*)", re.IGNORECASE)


def conninfo_passwords(conninfo):
    """Every password written in a libpq conninfo (key=value or URI form), as written and decoded."""
    if not conninfo:
        return []
    found = []
    for match in _KV_PASSWORD.finditer(conninfo):
        value = match.group(2)
        found.append(value)
        if value.startswith("'") and value.endswith("'"):
            found.append(re.sub(r"\\(.)", r"\1", value[1:-1]))
    for pattern in (_URI_PASSWORD, _URI_QUERY_PASSWORD):
        for match in pattern.finditer(conninfo):
            found.append(match.group(2))
            found.append(_url_unquote(match.group(2)))
    return [value for value in dict.fromkeys(found) if value and value != "''"]


def redact_conninfo(conninfo):
    """The conninfo with every password replaced by ********."""
    if not conninfo:
        return conninfo
    text = _KV_PASSWORD.sub(lambda m: m.group(1) + REDACTED, conninfo)
    text = _URI_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    return _URI_QUERY_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)


def build_conninfo(host, port, user, password, dbname, sslmode=None):
    """A libpq keyword/value connection string, quoted by psycopg's conninfo rules."""
    require_psycopg()
    values = dict(host=host, port=int(port), user=user, dbname=dbname)
    if password:
        values["password"] = password
    if sslmode:
        values["sslmode"] = sslmode
    return make_conninfo("", **values)
