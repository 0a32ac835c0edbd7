"""An isolated PostgreSQL 17 -> 18 pair for engine tests, on its own Docker network.

    from pg_pair import pg_pair_fixture
    pg_pair = pg_pair_fixture()          # in a test module or conftest: a session fixture

    def test_x(pg_pair):
        pg_pair.psql("src", "SELECT 1")
        pg_pair.endpoint("tgt")          # dict host/port/user/password/dbname (controller access)
        pg_pair.in_network("src")        # ("odoo-mig-engine-src", 5432), for CREATE SUBSCRIPTION

SOURCE: container `odoo-mig-engine-src` from the lab's `odoo-mig/legacy-vm` image, running
PostgreSQL 17's `postgres` directly (not systemd) as user postgres on an initdb'd data
directory: wal_level=logical, listen '*', scram-sha-256, published on 127.0.0.1:5461.
TARGET: container `odoo-mig-engine-tgt` from `odoo-mig/target-postgres` (PostgreSQL 18),
published on 127.0.0.1:5462. Both superuser passwords are generated, kept in files under
pytest's tmp dir (mode 0600) and mounted as /run/secrets/postgres_password: never on a
command line nor in a container's environment (`docker exec -e PGPASSWORD` names the
variable only; its value comes from the client's environment).

The source database `shop` is a pg_dump of the lab's `acme` (legacy-vm-1, read through
127.0.0.1:5441 as odoo_migration), taken with pg_dump 18 from the target image in a
one-off `--network host` container (the host's pg_dump is too old for 17), restored with
psql (pg_dump 17.6+ writes \\restrict lines). Roles owning objects (`odoo`) are created
first, so ownership is kept.

Teardown removes both containers with `docker rm -fv` (their anonymous volumes too) and
the network. It never prunes volumes.
"""

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".build" / "collections"))
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg  # noqa: E402
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# ODOO_MIG_PAIR_SUFFIX (e.g. "-rep") and ODOO_MIG_PAIR_PORT_BASE (e.g. 5470) let two test
# sessions run side by side: names get the suffix, ports are base+1 (source), base+2 (target).
SUFFIX = os.environ.get("ODOO_MIG_PAIR_SUFFIX", "")
PORT_BASE = int(os.environ.get("ODOO_MIG_PAIR_PORT_BASE", "5460"))
NETWORK = "odoo-mig-engine" + SUFFIX
SIDES = {
    "src": {"container": "odoo-mig-engine-src" + SUFFIX, "port": PORT_BASE + 1, "major": 17},
    "tgt": {"container": "odoo-mig-engine-tgt" + SUFFIX, "port": PORT_BASE + 2, "major": 18},
}
DATABASE = "shop"
LAB_SOURCE_PORT = 5441
LAB_SOURCE_DB = "acme"
LAB_SOURCE_USER = "odoo_migration"
LAB_SOURCE_SECRET = REPO / "lab" / ".state" / "secrets" / "legacy-vm-1-source-postgres-password"
# The role owning the lab's acme (the database's owner in the pair too). Every other role acme
# uses (the reporting schema's owner, the BI login) is read from the lab and created as well.
SOURCE_APP_ROLES = ("odoo",)

# The source's start script: initialise once (password from the mounted file), then run
# postgres 17 in the foreground as postgres. Idempotent, so `docker restart` works.
SOURCE_START = r"""
set -eu
bin=/usr/lib/postgresql/17/bin
data=/var/lib/postgresql/engine
install -d -o postgres -g postgres -m 0700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  pw="$(mktemp /tmp/initdb-pw.XXXXXX)"
  cat /run/secrets/postgres_password > "$pw"; chown postgres "$pw"
  runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 --pwfile="$pw" >/dev/null
  rm -f "$pw"
  cat >> "$data/postgresql.conf" <<'CONF'
listen_addresses = '*'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = 16
unix_socket_directories = '/tmp'
shared_buffers = 128MB
CONF
  printf 'host all all all scram-sha-256\nhost replication all all scram-sha-256\n' >> "$data/pg_hba.conf"
fi
exec runuser -u postgres -- "$bin/postgres" -D "$data"
"""


def docker(*args, stdin=None, check=True, timeout=300, env=None, capture=True):
    """Run `docker args...`; return CompletedProcess (text)."""
    run = subprocess.run(
        ["docker", *args],
        input=stdin,
        capture_output=capture,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if check and run.returncode != 0:
        raise RuntimeError(
            "docker {} failed (rc={}): {}".format(" ".join(args[:3]), run.returncode, run.stderr)
        )
    return run


def image_tag(repository):
    """The first local tag of an image repository (the lab tags by content hash)."""
    tag = docker("images", repository, "--format", "{{.Tag}}").stdout.split()
    tags = [t for t in tag if t != "<none>"]
    if not tags:
        raise RuntimeError(f"no local image {repository}: run `make lab-up` first")
    return f"{repository}:{tags[0]}"


class PgPair:
    """The running pair. Passwords live in files in `state_dir`."""

    def __init__(self, state_dir, sides=None, network=None):
        """sides: {"src": {"container", "port"}, "tgt": {...}} and network: another pair's
        names and ports, so test modules never collide (default: SIDES, NETWORK)."""
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.passwords = {}
        # The engine's pg_dump and psql run in the target container and read their pgpass files here,
        # mounted at the same path.
        self.pgpass_dir = self.state_dir / "pgpass"
        self.pgpass_dir.mkdir(exist_ok=True)
        os.chmod(self.pgpass_dir, 0o700)
        self.sides = sides or SIDES
        self.network = network or NETWORK

    # -- addresses -------------------------------------------------------------------
    @staticmethod
    def is_source(side):
        return side.startswith("src")

    def container(self, side):
        return self.sides[side]["container"]

    def password_file(self, side):
        return self.state_dir / (f"{side}-postgres-password")

    def endpoint(self, side, dbname=DATABASE):
        """Controller access: host/port/user/password/dbname."""
        return {
            "host": "127.0.0.1",
            "port": self.sides[side]["port"],
            "user": "postgres",
            "password": self.passwords[side],
            "dbname": dbname,
        }

    def module_endpoint(self, side, dbname=DATABASE):
        """The same, shaped like this collection's module options (database, not dbname)."""
        ep = self.endpoint(side, dbname)
        ep["database"] = ep.pop("dbname")
        return ep

    def pg_endpoint(self, side, dbname=DATABASE):
        """The engine's endpoint object for `side` (controller access, superuser)."""
        ep = self.endpoint(side, dbname)
        return _pg.PgEndpoint(ep["host"], ep["dbname"], ep["port"], ep["user"], ep["password"], "disable")

    def conninfo_from_other(self, side, dbname=DATABASE):
        """Connection string by which the other container reaches `side` (superuser)."""
        return (
            f"host={self.container(side)} port=5432 user=postgres password={self.passwords[side]}"
            f" dbname={dbname} sslmode=disable"
        )

    def in_network(self, side):
        """(host, port) as the other container reaches it on the engine network."""
        return self.container(side), 5432

    def engine_client_args(self, source_side="src"):
        """The options that make the engine run pg_dump and psql 18 inside the target container: the
        connection forwarded by variable name, the password in a pgpass file under pgpass_dir."""
        env = ["-e", "PGPASSFILE", "-e", "PGUSER", "-e", "PGDATABASE"]
        tgt = self.container("tgt")
        return {
            "pg_dump_command": [
                "docker",
                "exec",
                "-i",
                *env,
                tgt,
                "pg_dump",
                "-h",
                self.container(source_side),
            ],
            "psql_command": ["docker", "exec", "-i", *env, tgt, "psql", "-h", "127.0.0.1"],
            "client_pgpass_dir": str(self.pgpass_dir),
        }

    def docker_client_command(self, side, program):
        """argv prefix running `program` (pg_dump, psql) 18 inside the TARGET container with
        PGPASSWORD taken from the caller's environment (never on the command line)."""
        del side  # the client binaries of 18 live in the target container only
        return ["docker", "exec", "-i", "-e", "PGPASSWORD", self.container("tgt"), program]

    # -- life cycle ------------------------------------------------------------------
    def _write_password(self, side):
        path = self.password_file(side)
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            os.chmod(path, 0o600)
        self.passwords[side] = path.read_text().strip()
        return path

    def start(self):
        self.remove(quiet=True)
        docker("network", "create", self.network)
        src_image = image_tag("odoo-mig/legacy-vm")
        tgt_image = image_tag("odoo-mig/target-postgres")
        common = ["--network", self.network, "--stop-signal", "SIGINT"]
        # Every side named src* is a PostgreSQL 17 source (a legacy VM); tgt is the target.
        for side in self.sides:
            password = self._write_password(side)
            image = (
                ["--entrypoint", "/bin/bash", src_image, "-c", SOURCE_START]
                if self.is_source(side)
                else [tgt_image]
            )
            docker(
                "run", "-d", "--name", self.container(side), *common,
                "--network-alias", self.container(side),
                "-p", f"127.0.0.1:{self.sides[side]['port']}:5432",
                "-v", f"{password}:/run/secrets/postgres_password:ro",
                "-v", f"{self.pgpass_dir}:{self.pgpass_dir}:ro",
                *image,
            )  # fmt: skip
        for side in self.sides:
            self.wait_ready(side)
        return self

    def wait_ready(self, side, timeout=90):
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            run = self.psql(side, "SELECT 1", dbname="postgres", check=False)
            if run.returncode == 0:
                return
            last = run.stderr
            time.sleep(0.5)
        logs = docker("logs", "--tail", "30", self.container(side), check=False)
        raise RuntimeError(f"{side} not ready: {last} {logs.stdout} {logs.stderr}")

    def remove(self, quiet=False):
        for side in self.sides:
            docker("rm", "-fv", self.container(side), check=not quiet)
        docker("network", "rm", self.network, check=False)

    # -- helpers ---------------------------------------------------------------------
    def psql(self, side, sql, dbname=DATABASE, check=True, timeout=300):
        """Run SQL through psql inside the container as postgres (peer auth on the socket);
        return CompletedProcess. stdout is unaligned, tuples only, '|' separated."""
        socket_dir = "/tmp" if self.is_source(side) else "/var/run/postgresql"
        run = docker(
            "exec", "-i", "-u", "postgres", self.container(side),
            "psql", "-h", socket_dir, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dbname,
            stdin=sql, check=False, timeout=timeout,
        )  # fmt: skip
        if check and run.returncode != 0:
            raise RuntimeError(f"psql on {side} failed: {run.stderr}")
        return run

    def query(self, side, sql, dbname=DATABASE):
        """Rows of a query as lists of strings."""
        out = self.psql(side, sql, dbname=dbname).stdout
        return [line.split("|") for line in out.splitlines() if line]

    def scalar(self, side, sql, dbname=DATABASE):
        rows = self.query(side, sql, dbname=dbname)
        return rows[0][0] if rows else None

    def restart(self, side):
        docker("restart", "-t", "30", self.container(side))
        self.wait_ready(side)

    def disconnect(self, side):
        """Cut `side` off the engine network (its published port keeps working only if it
        stays on a network; Docker keeps port bindings while the container runs)."""
        docker("network", "disconnect", self.network, self.container(side))

    def reconnect(self, side):
        docker(
            "network", "connect", "--alias", self.container(side), self.network, self.container(side),
            check=False,
        )  # fmt: skip

    # -- the dataset -----------------------------------------------------------------
    def dump_lab_acme(self, path):
        """pg_dump 18 of the lab's acme into `path` (a plain SQL file)."""
        tgt_image = image_tag("odoo-mig/target-postgres")
        env = dict(os.environ, PGPASSWORD=LAB_SOURCE_SECRET.read_text().strip())
        with open(path, "w") as out:
            run = subprocess.run(
                [
                    "docker", "run", "--rm", "-i", "--network", "host", "-e", "PGPASSWORD",
                    "--entrypoint", "/usr/lib/postgresql/18/bin/pg_dump", tgt_image,
                    "-h", "127.0.0.1", "-p", str(LAB_SOURCE_PORT), "-U", LAB_SOURCE_USER,
                    "-d", LAB_SOURCE_DB, "--no-publications", "--no-subscriptions",
                    # A migration run against the lab leaves its helper schema (owned by
                    # odoo_migration, a role the pair lacks): shop starts without it.
                    "--exclude-schema=odoo_migration",
                ],
                stdout=out, stderr=subprocess.PIPE, text=True, env=env, timeout=600, check=False,
            )  # fmt: skip
        if run.returncode != 0:
            raise RuntimeError(f"pg_dump of the lab's acme failed: {run.stderr}")
        return path

    def lab_roles(self):
        """The roles the lab's acme uses (owners, grantees, their members), the migration's own left out."""
        endpoint = _pg.PgEndpoint(
            "127.0.0.1",
            LAB_SOURCE_DB,
            LAB_SOURCE_PORT,
            LAB_SOURCE_USER,
            LAB_SOURCE_SECRET.read_text().strip(),
        )
        conn = _pg.connect(endpoint)
        try:
            rows = conn.execute(_cutover.DATABASE_ROLES_SQL).fetchall()
        finally:
            conn.close()
        names = [row["name"] for row in rows if row["name"] != LAB_SOURCE_USER]
        return list(SOURCE_APP_ROLES) + [name for name in names if name not in SOURCE_APP_ROLES]

    def create_roles(self, side, roles):
        """Create each role (LOGIN, no password) unless it exists."""
        for role in roles:
            self.psql(
                side,
                f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
                f'CREATE ROLE "{role}" LOGIN; END IF; END$$;',
                dbname="postgres",
            )

    def load_shop(self, dump_path):
        self.create_roles("src", self.lab_roles())
        self.psql("src", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", dbname="postgres")
        self.psql(
            "src",
            f"CREATE DATABASE {DATABASE} OWNER {SOURCE_APP_ROLES[0]} TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'",
            dbname="postgres",
        )
        self.psql("src", Path(dump_path).read_text(), timeout=900)
        self.psql("src", "ANALYZE")


def start_pair(state_dir, dump_cache=None):
    """Start the pair and load `shop`; return the PgPair. dump_cache: reuse a dump file."""
    # A missing part fails the run: these tests never pass by being skipped.
    if shutil.which("docker") is None:
        pytest.fail("docker is not available: run `make setup`")
    if not LAB_SOURCE_SECRET.exists():
        pytest.fail(f"the lab is not up (no {LAB_SOURCE_SECRET}): run `make lab-up`")
    pair = PgPair(state_dir).start()
    dump = Path(dump_cache) if dump_cache else Path(state_dir) / "acme.sql"
    if not dump.exists() or dump.stat().st_size == 0:
        pair.dump_lab_acme(dump)
    pair.load_shop(dump)
    return pair


def pg_pair_fixture(scope="session", keep_env="ODOO_MIG_KEEP_PAIR"):
    """A pytest fixture (default session scope) yielding a started PgPair; torn down after,
    unless the environment variable `keep_env` is set (for debugging)."""

    @pytest.fixture(scope=scope)
    def pg_pair(tmp_path_factory):
        state = tmp_path_factory.mktemp("pg_pair")
        pair = start_pair(state)
        try:
            yield pair
        finally:
            if not os.environ.get(keep_env):
                pair.remove(quiet=True)

    return pg_pair
