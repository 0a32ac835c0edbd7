"""pg_dump and psql get their password from a private pgpass file, never from PGPASSWORD."""

import os
import socket
import stat
import struct
import threading

import psycopg
import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import client as _client
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg

PASSWORD = "pa:ss\\wo rd'1"


def endpoint(port=5432, password=PASSWORD):
    return _pg.PgEndpoint("127.0.0.1", "acme", port, "odoo_migration", password, "disable")


class PasswordCatcher(threading.Thread):
    """A server that speaks just enough of PostgreSQL's protocol to ask for a cleartext password and
    keep what the client sends."""

    def __init__(self):
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.password = None

    def _read(self, conn, size):
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def run(self):
        conn, _ = self.listener.accept()
        with conn:
            while True:
                (length,) = struct.unpack("!i", self._read(conn, 4))
                body = self._read(conn, length - 4)
                if struct.unpack("!i", body[:4])[0] in (80877103, 80877104):  # SSL or GSS request
                    conn.sendall(b"N")
                    continue
                break
            conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            assert self._read(conn, 1) == b"p"
            (length,) = struct.unpack("!i", self._read(conn, 4))
            self.password = self._read(conn, length - 4).rstrip(b"\0").decode()
            message = b"SFATAL\0C28P01\0Mcaught\0\0"
            conn.sendall(b"E" + struct.pack("!i", len(message) + 4) + message)
        self.listener.close()


def test_libpq_reads_the_password_from_the_file_and_never_from_the_callers_pgpassword(monkeypatch):
    server = PasswordCatcher()
    server.start()
    monkeypatch.setenv("PGPASSWORD", "the-caller's-other-secret")
    with _client.client_environment(endpoint(server.port), "odoo_migration_copy") as env:
        assert "PGPASSWORD" not in env
        assert PASSWORD not in "".join(env.values())
        path = env["PGPASSFILE"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        monkeypatch.delenv("PGPASSWORD")
        for key, value in env.items():
            if key.startswith("PG"):
                monkeypatch.setenv(key, value)
        with pytest.raises(psycopg.OperationalError, match="caught"):
            psycopg.connect("connect_timeout=5")
    server.join(5)
    assert server.password == PASSWORD
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_the_file_is_removed_when_the_command_fails(tmp_path):
    tmp_path.chmod(0o700)
    with pytest.raises(RuntimeError):
        with _client.client_environment(endpoint(), "x", str(tmp_path)) as env:
            assert os.path.dirname(env["PGPASSFILE"]) == str(tmp_path)
            raise RuntimeError("pg_dump failed")
    assert list(tmp_path.iterdir()) == []


def test_a_pgpass_dir_others_may_write_to_is_refused(tmp_path):
    tmp_path.chmod(0o777)
    with pytest.raises(_pg.PgError, match="writable by no one else .chmod 0700"):
        with _client.client_environment(endpoint(), "x", str(tmp_path)):
            pass
    with pytest.raises(_pg.PgError, match="does not exist: create it"):
        with _client.client_environment(endpoint(), "x", str(tmp_path / "missing")):
            pass
    assert list(tmp_path.iterdir()) == []


def test_without_a_password_no_file_is_made():
    with _client.client_environment(endpoint(password=None), "x") as env:
        assert "PGPASSFILE" not in env and "PGPASSWORD" not in env


def test_pgpass_fields_escape_colons_and_backslashes():
    assert _client.pgpass_line("a:b", "c\\d:e") == "*:*:*:a\\:b:c\\\\d\\:e\n"
