"""Connection helper: endpoint description and errors that never carry the password."""

import base64
import socket

import psycopg
import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg

PASSWORD = "s3cr'et\\pa ss"


def endpoint(**changes):
    values = dict(host="127.0.0.1", database="acme", port=5417, user="odoo", password=PASSWORD)
    values.update(changes)
    return _pg.PgEndpoint(**values)


def test_describe_and_repr_name_the_server_never_the_password():
    target = endpoint()
    assert target.describe() == "127.0.0.1:5417 as odoo, database acme"
    assert PASSWORD not in repr(target) and PASSWORD not in str(target)
    assert target.with_database("postgres").describe() == "127.0.0.1:5417 as odoo, database postgres"


def test_from_params_applies_defaults():
    params = dict(
        host="db", port=None, user=None, password=None, database=None, sslmode=None, connect_timeout=None
    )
    target = _pg.PgEndpoint.from_params(params, "postgres")
    assert (target.port, target.user, target.database, target.sslmode, target.connect_timeout) == (
        5432,
        "postgres",
        "postgres",
        "prefer",
        10,
    )
    assert "password" not in target.connect_kwargs()


def test_every_form_of_the_password_is_redacted():
    escaped = PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
    text = f"password={escaped} url=postgresql://odoo:s3cr%27et%5Cpa%20ss@h/acme plain {PASSWORD}"
    redacted = _pg.redact(text, [PASSWORD])
    assert "s3cr" not in redacted
    assert redacted.count(_pg.REDACTED) == 3
    assert _pg.redact("nothing secret", [None, ""]) == "nothing secret"


def test_a_connection_error_quoting_the_password_is_redacted(monkeypatch):
    def refuse(**kwargs):
        escaped = kwargs["password"].replace("\\", "\\\\").replace("'", "\\'")
        raise psycopg.OperationalError(
            f"connection failed: invalid option near password='{escaped}'\n\tand {kwargs['password']}"
        )

    monkeypatch.setattr(_pg.psycopg, "connect", refuse)
    with pytest.raises(_pg.PgConnectError) as caught:
        _pg.connect(endpoint())
    message = str(caught.value)
    assert "s3cr" not in message
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:5417 as odoo, database acme: ")
    assert "pg_hba.conf" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_real_refused_connection_names_host_port_user_database_and_not_the_password():
    with pytest.raises(_pg.PgConnectError) as caught:
        _pg.connect(endpoint(port=_closed_port(), connect_timeout=2))
    message = str(caught.value)
    assert "as odoo, database acme" in message and "127.0.0.1:" in message
    assert PASSWORD not in message and "s3cr" not in message
    assert "\n" not in message


def test_query_failures_are_redacted():
    message = _pg.query_failure_message(endpoint(), "the catalogs", f"ERROR: bad {PASSWORD}")
    assert (
        message
        == "PostgreSQL at 127.0.0.1:5417 as odoo, database acme failed while reading the catalogs: "
        + ("ERROR: bad ********")
    )


def test_a_scram_verifier_is_the_one_postgresql_computes():
    """RFC 7677's example: user 'user', password 'pencil', salt and iterations as in the RFC."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = _pg.scram_verifier("pencil", salt, 4096)
    assert verifier.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    assert _pg.scram_matches(verifier, "pencil") and not _pg.scram_matches(verifier, "pencils")
    assert not _pg.scram_matches("md5abc", "pencil") and not _pg.scram_matches(None, "pencil")
    # A new salt each time: the same password gives another verifier, which still matches.
    other = _pg.scram_verifier("pencil")
    assert other != verifier and _pg.scram_matches(other, "pencil")


def test_a_conninfo_gets_its_login_replaced():
    conninfo = _pg.conninfo_with_login(
        "host=db port=5432 user=postgres password=superSecret dbname=acme", "rep", "p w"
    )
    assert "superSecret" not in conninfo and "user=postgres" not in conninfo
    assert "user=rep" in conninfo and "password='p w'" in conninfo and "dbname=acme" in conninfo
