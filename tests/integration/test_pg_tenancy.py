"""Two instances whose Odoo uses the same role name, moved to one target: neither touches the other.

Two legacy servers (PostgreSQL 17, one container each) both run their Odoo as the role `odoo`,
with a NOLOGIN group `reporting`, default privileges and a large object, as estates do. Instance
vm-a moves first (copy, replication, cutover) and its application then writes on the target as
its own role the whole time, through one connection. Instance vm-b is checked (a role map that
names vm-a's role is refused, and so is a database vm-a holds), then moved and rolled back while
its own writer works. Checked as a user would: vm-a's writer never failed and every write it
was told about is there; vm-a's role still logs in with the same password, unfenced; each role
connects only to its own database; vm-b's writes are all back on its server; a re-run of vm-a's
phases changes nothing. The modules run through ansible-playbook (module_run.py).
"""

import os
import secrets
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from module_run import run_module
from pg_pair import PgPair, image_tag

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".build" / "collections"))
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg  # noqa: E402
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import tenancy as _tenancy  # noqa: E402

pytestmark = pytest.mark.lab

SIDES = {
    "src_a": {"container": "odoo-mig-tenancy-src-a", "port": 5491},
    "src_b": {"container": "odoo-mig-tenancy-src-b", "port": 5492},
    "tgt": {"container": "odoo-mig-tenancy-tgt", "port": 5493},
}
NETWORK = "odoo-mig-tenancy"
INSTANCES = {"vm-a": ("src_a", "shop_a"), "vm-b": ("src_b", "shop_b")}
APP_PASSWORD = {"vm-a": secrets.token_urlsafe(12), "vm-b": secrets.token_urlsafe(12)}
TARGET_APP_PASSWORD = {"vm-a": secrets.token_urlsafe(12), "vm-b": secrets.token_urlsafe(12)}
MAPS = {
    "vm-a": {"odoo": "odoo_vm_a", "reporting": "reporting_vm_a"},
    "vm-b": {"odoo": "odoo_vm_b", "reporting": "reporting_vm_b"},
}

SOURCE_SCHEMA = """
CREATE TABLE item (id serial PRIMARY KEY, note text NOT NULL, written_at timestamptz DEFAULT now());
CREATE TABLE blob_ref (id serial PRIMARY KEY, blob oid);
ALTER TABLE item OWNER TO odoo;
ALTER TABLE blob_ref OWNER TO odoo;
GRANT SELECT ON item TO reporting;
ALTER DEFAULT PRIVILEGES FOR ROLE odoo IN SCHEMA public GRANT SELECT ON TABLES TO reporting;
INSERT INTO item (note) SELECT 'seed ' || g FROM generate_series(1, 300) g;
DO $$DECLARE o oid; BEGIN
  o := lo_from_bytea(0, convert_to('the document', 'UTF8'));
  EXECUTE format('ALTER LARGE OBJECT %s OWNER TO odoo', o);
  EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO reporting', o);
  INSERT INTO blob_ref (blob) VALUES (o);
END$$;
"""


class Writer(threading.Thread):
    """An application writing rows through one connection, as Odoo's workers do, recording
    each write PostgreSQL acknowledged; `switch` points it at another server."""

    def __init__(self, endpoint, label):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.label = label
        self.acknowledged = []
        self.errors = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def switch(self, endpoint):
        with self.lock:
            self.endpoint = endpoint

    def run(self):
        conn = None
        current = None
        while not self.stop.is_set():
            with self.lock:
                endpoint = self.endpoint
            try:
                if conn is None or current is not endpoint:
                    if conn is not None:
                        conn.close()
                    conn = psycopg.connect(autocommit=True, connect_timeout=3, **endpoint)
                    current = endpoint
                note = f"{self.label} {len(self.acknowledged) + 1}"
                row = conn.execute("INSERT INTO item (note) VALUES (%s) RETURNING id", (note,)).fetchone()
                self.acknowledged.append((row[0], note))
            except psycopg.Error as error:
                self.errors.append(str(error).strip())
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.2)
            time.sleep(0.05)
        if conn is not None:
            conn.close()


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    state = tmp_path_factory.mktemp("pg_tenancy")
    image_tag("odoo-mig/legacy-vm")  # fails with "run make lab-up" when the images are missing
    pair = PgPair(state, sides=SIDES, network=NETWORK).start()
    try:
        for instance, (side, database) in INSTANCES.items():
            pair.psql(
                side,
                f"CREATE ROLE odoo LOGIN PASSWORD '{APP_PASSWORD[instance]}'; CREATE ROLE reporting NOLOGIN; "
                f"CREATE DATABASE {database} OWNER odoo TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'",
                dbname="postgres",
            )
            pair.psql(side, SOURCE_SCHEMA, dbname=database)
        yield pair
    finally:
        if not os.environ.get("ODOO_MIG_KEEP_PAIR"):
            pair.remove(quiet=True)


def test_instances_of_one_wave_claim_their_names_side_by_side(trio):
    """The first claims on a target create its claims table: two at once must both succeed."""
    target = trio.pg_endpoint("tgt", "postgres")
    results, barrier = {}, threading.Barrier(2)

    def claim(instance):
        conn = _pg.connect(target)
        try:
            barrier.wait(10)
            results[instance] = _tenancy.claim(
                conn, instance, [f"race_{instance}"], [f"race_role_{instance}"]
            )
        except Exception as error:  # reported below
            results[instance] = error
        finally:
            conn.close()

    threads = [threading.Thread(target=claim, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {
        "w1": ["database race_w1", "role race_role_w1"],
        "w2": ["database race_w2", "role race_role_w2"],
    }, results
    trio.psql("tgt", "DELETE FROM odoo_migration.tenant_claim WHERE name LIKE 'race%'", dbname="postgres")


def _source(pair, instance):
    side, database = INSTANCES[instance]
    return pair.module_endpoint(side, database)


def _target(pair, instance, dbname=None):
    return pair.module_endpoint("tgt", dbname or INSTANCES[instance][1])


def _copy_args(pair, instance, **extra):
    side, _database = INSTANCES[instance]
    args = {
        "source": _source(pair, instance),
        "target": pair.module_endpoint("tgt", "postgres"),
        "source_conninfo_from_target": {"host": pair.container(side), "port": 5432},
        "instance": instance,
        "role_map": MAPS[instance],
        **pair.engine_client_args(side),
    }
    args.update(extra)
    return args


def _cutover_args(pair, instance, **extra):
    side, database = INSTANCES[instance]
    args = {
        "source": _source(pair, instance),
        "target": _target(pair, instance),
        "application_roles": ["odoo"],
        "role_map": MAPS[instance],
        "source_conninfo_from_target": pair.conninfo_from_other(side, database),
        "target_conninfo_from_source": pair.conninfo_from_other("tgt", database),
        "grace_seconds": 1,
    }
    args.update(extra)
    return args


def _app_on_source(pair, instance):
    side, database = INSTANCES[instance]
    endpoint = pair.endpoint(side, database)
    endpoint.update(user="odoo", password=APP_PASSWORD[instance])
    return endpoint


def _app_on_target(pair, instance, dbname=None):
    endpoint = pair.endpoint("tgt", dbname or INSTANCES[instance][1])
    endpoint.update(user=MAPS[instance]["odoo"], password=TARGET_APP_PASSWORD[instance])
    return endpoint


def _move(pair, instance, tmp_path):
    """Copy, catch up and cut over one instance; then its containers' role logs in (odoo_containers)."""
    side, database = INSTANCES[instance]
    copied = run_module(tmp_path, "pg_logical_migration", _copy_args(pair, instance))
    assert not copied.get("failed"), copied.get("msg")
    # Caught up: the newest row on the source now (its writer may be adding more) is on the target.
    newest = pair.scalar(side, "SELECT max(id) FROM item", dbname=database)
    deadline = time.monotonic() + 90
    while pair.scalar("tgt", f"SELECT count(*) FROM item WHERE id = {newest}", dbname=database) != "1":
        assert time.monotonic() < deadline, f"{instance}: replication did not catch up"
        time.sleep(0.5)
    switched = run_module(tmp_path, "pg_cutover", _cutover_args(pair, instance))
    assert not switched.get("failed"), switched.get("msg")
    assert switched["state"] == "switched"
    role = MAPS[instance]["odoo"]
    pair.psql("tgt", f"ALTER ROLE {role} LOGIN PASSWORD '{TARGET_APP_PASSWORD[instance]}'", dbname="postgres")
    return copied, switched


def _role_state(pair, role):
    return pair.query(
        "tgt",
        "SELECT rolcanlogin, rolpassword, coalesce(shobj_description(oid, 'pg_authid'), ''), "
        "coalesce((SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s "
        "WHERE s.setrole = a.oid AND s.setdatabase = 0), '') FROM pg_authid a "
        f"WHERE rolname = '{role}'",
        dbname="postgres",
    )


def _can_connect(endpoint):
    try:
        with psycopg.connect(connect_timeout=3, **endpoint) as conn:
            conn.execute("SELECT 1")
        return True, ""
    except psycopg.Error as error:
        return False, str(error)


@pytest.fixture(scope="module")
def first_moved(trio, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vm-a")
    preflight = run_module(
        tmp,
        "pg_migration_preflight",
        {
            "source": _source(trio, "vm-a"),
            "target": trio.module_endpoint("tgt", "postgres"),
            "instance": "vm-a",
            "application_role": "odoo",
            "wal_sample_seconds": 0,
        },
    )
    assert not preflight.get("failed"), preflight.get("msg")
    copied, switched = _move(trio, "vm-a", tmp)
    writer = Writer(_app_on_target(trio, "vm-a"), "vm-a")
    writer.start()
    time.sleep(1)
    yield dict(preflight=preflight, copied=copied, switched=switched, writer=writer, tmp=tmp)
    writer.stop.set()
    writer.join(10)


def test_the_default_names_are_the_instances_own(first_moved):
    preflight = first_moved["preflight"]
    assert preflight["target_roles"] == MAPS["vm-a"]
    assert "tenant_collision" not in [concern["id"] for concern in preflight["concerns"]]
    assert first_moved["copied"]["target_roles"] == MAPS["vm-a"]
    assert first_moved["copied"]["journal"]["target_roles"] == MAPS["vm-a"]
    assert first_moved["switched"]["target_application_roles"] == ["odoo_vm_a"]


def test_the_first_instance_owns_its_database_as_its_own_roles(trio, first_moved):
    assert trio.scalar("tgt", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop_a'",
                       dbname="postgres") == "odoo_vm_a"  # fmt: skip
    assert trio.scalar(
        "tgt", "SELECT tableowner FROM pg_tables WHERE tablename = 'item'", dbname="shop_a"
    ) == ("odoo_vm_a")
    assert trio.scalar(
        "tgt", "SELECT has_table_privilege('reporting_vm_a', 'item', 'SELECT')", dbname="shop_a"
    )
    assert (
        trio.scalar("tgt", "SELECT pg_get_userbyid(defaclrole) FROM pg_default_acl", dbname="shop_a")
        == "odoo_vm_a"
    )
    assert trio.scalar(
        "tgt", "SELECT pg_get_userbyid(lomowner) FROM pg_largeobject_metadata", dbname="shop_a"
    ) == ("odoo_vm_a")
    # No role named like the source's was created: nobody else's `odoo` can be touched.
    assert trio.scalar("tgt", "SELECT count(*) FROM pg_roles WHERE rolname IN ('odoo', 'reporting')",
                       dbname="postgres") == "0"  # fmt: skip
    claims = trio.query("tgt", "SELECT kind, name, instance FROM odoo_migration.tenant_claim ORDER BY 1, 2",
                        dbname="postgres")  # fmt: skip
    assert claims == [
        ["database", "shop_a", "vm-a"],
        ["role", "odoo_vm_a", "vm-a"],
        ["role", "reporting_vm_a", "vm-a"],
    ]


def test_names_another_instance_holds_are_refused_before_anything_changes(trio, first_moved, tmp_path):
    taken = dict(MAPS["vm-b"], odoo="odoo_vm_a")
    preflight = run_module(
        tmp_path,
        "pg_migration_preflight",
        {
            "source": _source(trio, "vm-b"),
            "target": trio.module_endpoint("tgt", "postgres"),
            "instance": "vm-b",
            "role_map": taken,
            "wal_sample_seconds": 0,
        },
    )
    collisions = [concern for concern in preflight["concerns"] if concern["id"] == "tenant_collision"]
    assert [(c["severity"], c["subject"]) for c in collisions] == [("blocker", "target role odoo_vm_a")]
    assert "belongs to instance vm-a" in collisions[0]["message"]
    assert "target_roles: {odoo: odoo_vm_b}" in collisions[0]["fix"]

    before = _role_state(trio, "odoo_vm_a")
    refused = run_module(tmp_path, "pg_logical_migration", _copy_args(trio, "vm-b", role_map=taken))
    assert refused["failed"] and "belongs to instance vm-a" in refused["msg"]
    # vm-a's database under vm-b's name: refused as well.
    same_database = run_module(
        tmp_path, "pg_logical_migration", _copy_args(trio, "vm-b", target_database="shop_a")
    )
    assert (
        same_database["failed"]
        and "database shop_a on the target belongs to instance vm-a" in same_database["msg"]
    )
    assert (
        trio.scalar("tgt", "SELECT count(*) FROM pg_database WHERE datname = 'shop_b'", dbname="postgres")
        == "0"
    )
    assert trio.scalar("src_b", "SELECT count(*) FROM pg_publication", dbname="shop_b") == "0"
    assert _role_state(trio, "odoo_vm_a") == before


def test_the_second_move_and_its_rollback_leave_the_first_untouched(trio, first_moved, tmp_path):
    writer_a = first_moved["writer"]
    role_a_before = _role_state(trio, "odoo_vm_a")
    writer_b = Writer(_app_on_source(trio, "vm-b"), "vm-b")
    writer_b.start()
    try:
        _copied, switched = _move(trio, "vm-b", tmp_path)
        assert switched["target_application_roles"] == ["odoo_vm_b"]
        writer_b.switch(_app_on_target(trio, "vm-b"))
        time.sleep(2)
        back = run_module(tmp_path, "pg_cutover", _cutover_args(trio, "vm-b", direction="reverse"))
        assert not back.get("failed"), back.get("msg")
        assert back["fence"]["roles"] == ["odoo_vm_b"] and back["fence"]["side"] == "target"
        writer_b.switch(_app_on_source(trio, "vm-b"))
        time.sleep(2)
    finally:
        writer_b.stop.set()
        writer_b.join(10)
    time.sleep(1)

    # vm-a: its application never failed, its role is as it was (login, password, no fence).
    assert writer_a.errors == [], writer_a.errors[:3]
    assert _role_state(trio, "odoo_vm_a") == role_a_before
    assert role_a_before[0][0] == "t" and role_a_before[0][2:] == ["", ""]
    # vm-a's writer is still running: only writes acknowledged before the read can be in it.
    acknowledged_a = list(writer_a.acknowledged)
    ids = [row[0] for row in trio.query("tgt", "SELECT id FROM item", dbname="shop_a")]
    missing = set(i for i, _note in acknowledged_a) - set(int(i) for i in ids)
    assert acknowledged_a and not missing, f"{len(missing)} acknowledged writes of vm-a missing"

    # vm-b: every write acknowledged on either side is back on its own server.
    on_b = set(int(row[0]) for row in trio.query("src_b", "SELECT id FROM item", dbname="shop_b"))
    lost = set(i for i, _note in writer_b.acknowledged) - on_b
    assert writer_b.acknowledged and not lost, f"{len(lost)} acknowledged writes of vm-b lost"
    # vm-b's own role on the target is the one fenced, until its finalize.
    assert _role_state(trio, "odoo_vm_b")[0][0] == "f"

    # Each role connects only to its own databases.
    assert _can_connect(_app_on_target(trio, "vm-a"))[0]
    refused, why = _can_connect(_app_on_target(trio, "vm-a", "shop_b"))
    assert not refused and "permission denied for database" in why
    for role, database in (("odoo_vm_a", "shop_b"), ("odoo_vm_b", "shop_a"), ("reporting_vm_b", "shop_a")):
        assert trio.scalar("tgt", f"SELECT has_database_privilege('{role}', '{database}', 'CONNECT')",
                           dbname="postgres") == "f", (role, database)  # fmt: skip


def test_a_rerun_of_the_first_instance_changes_nothing(trio, first_moved, tmp_path):
    again = run_module(tmp_path, "pg_logical_migration", _copy_args(trio, "vm-a"))
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False, again["steps"]
    switched = run_module(tmp_path, "pg_cutover", _cutover_args(trio, "vm-a"))
    assert switched["changed"] is False and switched["state"] == "done"
    checked = run_module(tmp_path, "pg_logical_migration", _copy_args(trio, "vm-a"), check=True)
    assert checked["changed"] is False, checked["would"]
