"""pg_cutover, pg_compare and pg_migration_finalize on a PostgreSQL 17 -> 18 pair with a live writer.

The pair comes from pg_pair.py, under its own names (odoo-mig-cut-src/-tgt, 127.0.0.1:5471/5472,
network odoo-mig-cut) so that it never collides with the copy engine's tests. Forward
replication is set up here with plain SQL (publication, schema through pg_dump, subscription
with copy_data=true), as the copy engine's module would leave it.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

import psycopg
import psycopg.rows
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".build" / "collections"))
import pg_pair as pp
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import compare as _compare
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    schema_options as _schema_options,
)

pytestmark = pytest.mark.lab

NETWORK = "odoo-mig-cut"
SIDES = {
    "src": {"container": "odoo-mig-cut-src", "port": 5471},
    "tgt": {"container": "odoo-mig-cut-tgt", "port": 5472},
}
APP_ROLE = "odoo"
HOLDER = _cutover.SNAPSHOT_HOLDER_NAME
APP_PASSWORD = f"app-pw-{os.getpid()}"


def CutPair(state_dir):
    """pg_pair's PgPair under other container names, ports and network."""
    return pp.PgPair(state_dir, sides=SIDES, network=NETWORK)


def _sql(pair, side, statement):
    with psycopg.connect(**pair.endpoint(side), autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def _setup_forward(pair):
    """Publication on the source, schema on the target, subscription with copy_data=true, synced."""
    pair.psql("src", f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'", dbname="postgres")
    pair.psql(
        "src",
        """
        CREATE TABLE IF NOT EXISTS cut_probe (id bigserial PRIMARY KEY, n bigint NOT NULL, doc text);
        ALTER TABLE cut_probe OWNER TO odoo;
        CREATE SEQUENCE IF NOT EXISTS cut_standalone_seq; ALTER SEQUENCE cut_standalone_seq OWNER TO odoo;
        CREATE SEQUENCE IF NOT EXISTS cut_never_called_seq START 1000;
        DO $$DECLARE idx text; BEGIN
          SELECT i.relname INTO idx FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = 'lab_document_partner_rel'::regclass AND x.indisunique LIMIT 1;
          IF idx IS NOT NULL THEN
            EXECUTE format('ALTER TABLE lab_document_partner_rel REPLICA IDENTITY USING INDEX %I', idx);
          END IF;
        END$$;
        ALTER TABLE IF EXISTS lab_audit_log REPLICA IDENTITY FULL;
        CREATE PUBLICATION odoo_migration FOR ALL TABLES;
        """,
    )
    pair.create_roles("tgt", [role for role in pair.lab_roles() if role != APP_ROLE])
    pair.psql(
        "tgt",
        f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'; "
        "CREATE DATABASE shop OWNER odoo TEMPLATE template0 "
        "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'",
        dbname="postgres",
    )
    env = dict(os.environ, PGPASSWORD=pair.passwords["src"])
    dump = pp.subprocess.run(
        [*pair.docker_client_command("tgt", "pg_dump"), "-h", pair.container("src"), "-U", "postgres"]
        + ["-d", "shop", "--schema-only", "--no-publications", "--no-subscriptions"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    ).stdout
    # The target refuses column options of newer 17.x minors (pg_attver): leave them out, as the engine does.
    with psycopg.connect(**pair.endpoint("src"), autocommit=True) as source:
        with psycopg.connect(**pair.endpoint("tgt", "postgres"), autocommit=True) as target:
            source.row_factory = target.row_factory = psycopg.rows.dict_row
            refused = _schema_options.refused_on_target(source, target)
    pair.psql("tgt", _schema_options.strip_script(dump, _schema_options.refused_names(refused)))
    pair.psql(
        "tgt",
        "CREATE SUBSCRIPTION odoo_migration CONNECTION '{}' PUBLICATION odoo_migration "
        "WITH (slot_name = 'odoo_migration_shop', copy_data = true)".format(pair.conninfo_from_other("src")),
    )
    _wait(
        lambda: (
            pair.scalar("tgt", "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'") == "0"
            and pair.scalar("tgt", "SELECT count(*) FROM pg_subscription_rel") != "0"
        ),
        180,
        "initial sync",
    )


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Writer(threading.Thread):
    """An application writing continuously as the app role; logs what was acknowledged and rejected."""

    def __init__(self, pair, side):
        super().__init__(daemon=True)
        ep = pair.endpoint(side)
        ep.update(user=APP_ROLE, password=APP_PASSWORD)
        self.ep = ep
        self.acked = []
        self.rejected = []
        self.stop_event = threading.Event()
        self.n = 0
        self.conn = None

    def run(self):
        while not self.stop_event.is_set():
            self.n += 1
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(**self.ep, autocommit=True, connect_timeout=3)
                self.conn.execute(
                    "INSERT INTO cut_probe (n, doc) VALUES (%s, 'D' || nextval('cut_standalone_seq'))",
                    (self.n,),
                )
                self.acked.append(self.n)
            except psycopg.Error as error:
                self.rejected.append((self.n, time.monotonic(), str(error).splitlines()[0]))
                try:
                    if self.conn is not None:
                        self.conn.close()
                except psycopg.Error:
                    pass
                self.conn = None
                time.sleep(0.02)
            time.sleep(0.005)

    def stop(self):
        self.stop_event.set()
        self.join(10)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    state = tmp_path_factory.mktemp("pg_cut_pair")
    if pp.shutil.which("docker") is None or not pp.LAB_SOURCE_SECRET.exists():
        pytest.fail("needs docker and the lab: run `make lab-up`")
    pair = CutPair(state).start()
    try:
        pair.load_shop(pair.dump_lab_acme(state / "acme.sql"))
        _setup_forward(pair)
        yield pair
    finally:
        if not os.environ.get("ODOO_MIG_KEEP_PAIR"):
            pair.remove(quiet=True)


RETURN_LOGIN = dict(name="odoo_migration_return_pair", password="return-path-Secret-81")


def _options(pair, **extra):
    options = dict(
        application_roles=[APP_ROLE],
        target_conninfo_from_source=pair.conninfo_from_other("tgt"),
        source_conninfo_from_target=pair.conninfo_from_other("src"),
        grace_seconds=1,
        return_login=RETURN_LOGIN,
    )
    options.update(extra)
    return options


def _ids(pair, side):
    return set(int(r[0]) for r in pair.query(side, "SELECT n FROM cut_probe"))


def _role(pair, side):
    return pair.query(
        side,
        "SELECT rolcanlogin, (SELECT count(*) FROM pg_db_role_setting s WHERE s.setrole = r.oid) "
        "FROM pg_roles r WHERE rolname = 'odoo'",
    )[0]


def test_check_mode_plans_and_changes_nothing(pair):
    report = _cutover.run_cutover(
        pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), check_mode=True, **_options(pair)
    )
    assert report["state"] == "ready" and report["steps"] == []
    # A real run would cut over: check mode says so, and says what it would do.
    assert report["changed"] is True
    assert report["would"][0].startswith("fence odoo on the source")
    assert any(action.startswith("drop subscription odoo_migration") for action in report["would"])
    assert report["gates"]["subscription_worker_running"]
    assert [s["step"] for s in report["plan"]][0:3] == ["prepare", "gate", "fence"]
    assert _role(pair, "src") == ["t", "0"]
    assert (
        pair.psql("src", "SELECT 1 FROM pg_namespace WHERE nspname = 'odoo_migration'").stdout.strip() == ""
    )
    assert pair.conninfo_from_other("tgt").split("password=")[1].split()[0] not in repr(report)


def test_rehearsal_times_the_window_and_changes_nothing(pair):
    def catalog(side):
        return pair.query(
            side,
            "SELECT (SELECT string_agg(rolname || rolcanlogin::text, ',' ORDER BY rolname) FROM pg_roles),"
            " (SELECT count(*) FROM pg_namespace WHERE nspname = 'odoo_migration'),"
            " (SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots),"
            " (SELECT string_agg(subname, ',' ORDER BY subname) FROM pg_subscription),"
            " (SELECT string_agg(pubname, ',' ORDER BY pubname) FROM pg_publication),"
            " (SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'odoo_migration%')",
        )

    before = dict(src=catalog("src"), tgt=catalog("tgt"))
    report = _cutover.run_cutover(
        pair.pg_endpoint("src"),
        pair.pg_endpoint("tgt"),
        rehearse=True,
        **_options(pair, export_snapshots=True),
    )
    rehearsal = report["rehearsal"]
    timed = dict((record["step"], record["seconds"]) for record in rehearsal["steps"])
    assert set(timed) == {"fence", "marker", "drain", "large_objects", "sequences", "snapshots"}
    assert all(seconds > 0 for seconds in timed.values())
    assert rehearsal["untimed"] == ["return_path", "drop_path", "unfence"]
    assert rehearsal["predicted_write_unavailable_seconds"] == pytest.approx(sum(timed.values()), abs=0.002)
    assert report["state"] == "ready" and report["steps"] == [] and not report["changed"]
    assert dict(src=catalog("src"), tgt=catalog("tgt")) == before


def test_a_second_cutover_of_the_database_is_refused_while_one_runs(pair):
    """The session lock a running cutover holds: another run fails naming it, and changes nothing."""
    with psycopg.connect(**pair.endpoint("tgt"), autocommit=True) as running:
        running.execute("SET application_name = 'the other cutover'")
        running.execute("SELECT pg_advisory_lock(hashtext('odoo_migration:cutover'))")
        with pytest.raises(
            _cutover.CutoverError, match=r"another cutover of database \w+ is running.*the other"
        ):
            _cutover.run_cutover(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair))
    assert _role(pair, "src") == ["t", "0"]


def test_the_module_in_check_mode_through_ansible(pair):
    """The real module, run by ansible in check mode: plan and gates, nothing changed, no secret shown."""
    conninfo = pair.conninfo_from_other("tgt")
    args = {
        "source": pair.module_endpoint("src"),
        "target": pair.module_endpoint("tgt"),
        "application_roles": [APP_ROLE],
        "target_conninfo_from_source": conninfo,
    }
    run = pp.subprocess.run(
        [str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local", "--check", "-o"]
        + ["-m", "sysgenpro.odoo_migration.pg_cutover", "-a", json.dumps(args)],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ, ANSIBLE_CONFIG=str(Path(__file__).resolve().parents[2] / "ansible.cfg")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert '"state": "ready"' in out and '"changed": true' in out
    for secret in (pair.passwords["src"], pair.passwords["tgt"]):
        assert secret not in out


def test_gate_waits_for_an_apply_worker_that_restarts(pair):
    """An apply worker that just exited (PostgreSQL restarts it) delays the gate, never refuses it."""
    worker = "SELECT pid FROM pg_stat_subscription WHERE subname = 'odoo_migration' AND relid IS NULL"
    first = pair.scalar("tgt", worker)
    pair.psql("tgt", f"SELECT pg_terminate_backend({first})")
    # The launcher restarts a long-running worker at once, a worker that started less than
    # wal_retrieve_retry_interval (5 s) ago only after it: end the restarted one too.
    _wait(lambda: pair.scalar("tgt", worker) not in ("", first), 30, "a restarted apply worker")
    pair.psql("tgt", f"SELECT pg_terminate_backend(({worker}))")
    # Stopped right after the gate (a drain budget no drain meets): nothing is switched.
    with pytest.raises(_cutover.CutoverError) as raised:
        _cutover.run_cutover(
            pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, budgets={"drain": 0.000001})
        )
    report = raised.value.report
    assert report["gates"]["ok"] and report["gates"]["subscription_worker_running"], report["gates"]
    assert "drain" in report["abort_reason"] and report["unfenced"]
    assert _role(pair, "src") == ["t", "0"]


def test_budget_exceeded_unfences_and_keeps_replication(pair):
    writer = Writer(pair, "src")
    writer.start()
    time.sleep(1.0)
    with pytest.raises(_cutover.CutoverError) as raised:
        _cutover.run_cutover(
            pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, budgets={"drain": 0.000001})
        )
    report = raised.value.report
    acked_at_abort = len(writer.acked)
    time.sleep(1.0)
    writer.stop()
    assert report["aborted"] and not report["point_of_no_return_passed"] and report["unfenced"]
    assert "drain" in report["abort_reason"]
    assert _role(pair, "src") == ["t", "0"], "role attributes restored exactly"
    assert len(writer.acked) > acked_at_abort, "the writer resumed after the unfence"
    state = pair.query("tgt", "SELECT subenabled FROM pg_subscription WHERE subname = 'odoo_migration'")
    assert state == [["t"]]
    assert (
        pair.scalar("src", "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '%reverse%'")
        == "0"
    )
    _wait(lambda: set(writer.acked) <= _ids(pair, "tgt"), 30, "acknowledged writes on the target")


def _app_write_privileges(pair, side):
    """What the application role may write on the side's tables and sequences: (relation, privilege) rows."""
    return pair.query(
        side,
        "SELECT c.relname, a.privilege_type FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN LATERAL aclexplode(coalesce(c.relacl,"
        "   acldefault(CASE WHEN c.relkind = 'S' THEN 's'::\"char\" ELSE 'r'::\"char\" END, c.relowner))) a"
        " WHERE a.grantee = 'odoo'::regrole AND c.relkind IN ('r', 'S') AND n.nspname = 'public'"
        " AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'USAGE') ORDER BY 1, 2",
    )


def _as_app(pair, side, statement):
    with psycopg.connect(
        **dict(pair.endpoint(side), user=APP_ROLE, password=APP_PASSWORD), autocommit=True
    ) as c:
        cur = c.execute(statement)
        return cur.fetchall() if cur.description else []


def test_prepare_keeps_the_application_from_writing_to_the_target_and_presyncs_sequences(pair):
    """Before the page: the app role reads the target but cannot write it; its sequences match the source."""
    before = _app_write_privileges(pair, "tgt")
    assert len(before) > 100 and before == _app_write_privileges(pair, "src")
    pair.psql("src", "SELECT nextval('cut_standalone_seq') FROM generate_series(1, 7)")
    planned = _cutover.run_cutover(
        pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), check_mode=True, **_options(pair, stage="prepare")
    )
    assert planned["changed"] and planned["writes_held"]["odoo"]["tables"] > 50
    assert planned["sequences_presynced"] >= 1
    assert _app_write_privileges(pair, "tgt") == before, "check mode took a privilege"
    # A hold that would not hold (PUBLIC may still insert) is refused whole.
    pair.psql("tgt", "GRANT INSERT ON cut_probe TO PUBLIC")
    with pytest.raises(
        _cutover._pg.PgError,
        match=r"INSERT on public.cut_probe\) through PUBLIC or a role it is in.*nothing was changed",
    ):
        _cutover.run_cutover(
            pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, stage="prepare")
        )
    pair.psql("tgt", "REVOKE INSERT ON cut_probe FROM PUBLIC")
    assert _app_write_privileges(pair, "tgt") == before
    report = _cutover.run_cutover(
        pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, stage="prepare")
    )
    assert report["state"] == "prepared" and report["changed"]
    assert report["writes_held"]["odoo"]["tables"] == planned["writes_held"]["odoo"]["tables"]
    seq = "SELECT last_value || ':' || is_called FROM cut_standalone_seq"
    assert pair.scalar("tgt", seq) == pair.scalar("src", seq)
    assert _app_write_privileges(pair, "tgt") == []
    # The application reads (Odoo loads its registry, its sequences) and cannot write, by any path.
    assert _as_app(pair, "tgt", "SELECT count(*) FROM cut_probe")[0][0] >= 0
    assert _as_app(pair, "tgt", "SELECT last_value FROM cut_standalone_seq")
    for write in (
        "INSERT INTO cut_probe (n) VALUES (-7)",
        "UPDATE cut_probe SET doc = 'x' WHERE n = 1",
        "DELETE FROM cut_probe WHERE n = 1",
        "TRUNCATE cut_probe",
        "SELECT nextval('cut_standalone_seq')",
        "BEGIN READ WRITE; INSERT INTO cut_probe (n) VALUES (-8); COMMIT",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as_app(pair, "tgt", write)
    # The source is untouched: the application writes there, and replication still carries it.
    assert _role(pair, "src") == ["t", "0"]
    _as_app(pair, "src", "INSERT INTO cut_probe (n) VALUES (-9)")
    _wait(lambda: -9 in _ids(pair, "tgt"), 30, "a source write replicated to the held target")
    again = _cutover.run_cutover(
        pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, stage="prepare")
    )
    # Nothing more to hold; the source's sequences moved on (that insert, the gate's probe) and follow.
    assert again["writes_held"] == {} and again["sequences_presynced"] >= 1
    assert _app_write_privileges(pair, "tgt") == []


def test_cutover_compare_reverse_finalize(pair):
    writer = Writer(pair, "src")
    writer.n = 1_000_000
    writer.start()
    # Before the page (a no-op when the test above prepared already), then the window.
    _cutover.run_cutover(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, stage="prepare"))
    assert _app_write_privileges(pair, "tgt") == []
    time.sleep(1.5)
    report = _cutover.run_cutover(
        pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, export_snapshots=True)
    )
    time.sleep(0.5)
    writer.stop()
    print("forward steps", report["steps"], "write_unavailable_seconds", report["write_unavailable_seconds"])
    assert report["state"] == "switched" and report["point_of_no_return_passed"] and not report["aborted"]
    assert report["write_unavailable_seconds"] < 5
    assert report["sequences"]["guard_violations"] == []
    # The write hold of the prepare stage was given back in the window, exactly as the source has them.
    assert report["writes_released"] == ["odoo"]
    assert _app_write_privileges(pair, "tgt") == _app_write_privileges(pair, "src")
    assert '"public"."cut_standalone_seq"' in [
        _cutover.qualified(*name.split(".", 1)) for name in report["sequences"]["standalone"]
    ]
    # Every acknowledged commit is on the target; writes during the fence were rejected.
    assert set(writer.acked) <= _ids(pair, "tgt")
    assert len(writer.acked) > 50
    assert writer.rejected, "writes during the fence must be rejected with an error"
    assert not (set(n for n, _, _ in writer.rejected) & _ids(pair, "tgt")), "a rejected write was stored"
    print("rejections", len(writer.rejected), sorted(set(m for _, _, m in writer.rejected))[:4])
    # Sequences equal, compare finds nothing.
    assert pair.scalar("src", "SELECT last_value || ':' || is_called FROM cut_standalone_seq") == pair.scalar(
        "tgt", "SELECT last_value || ':' || is_called FROM cut_standalone_seq"
    )
    assert (
        pair.scalar("tgt", "SELECT last_value || ':' || is_called FROM cut_never_called_seq") == "1000:false"
    )
    started = time.monotonic()
    compared = _compare.run_compare(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), chunk_rows=200)
    print("compare", {k: v for k, v in compared.items() if k != "differences"}, time.monotonic() - started)
    assert compared["equal"], compared["differences"]
    assert compared["tables_compared"] > 100 and compared["sequences_compared"] > 100
    # The fence instant compared while users write on the target: equal, and only that instant is read.
    assert "snapshots" in [step["step"] for step in report["steps"]]
    users = Writer(pair, "tgt")
    users.n = 5_000_000
    users.start()
    time.sleep(1.5)
    at_fence = _compare.run_compare(
        pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), chunk_rows=200, snapshots=report["snapshots"]
    )
    users.stop()
    assert users.acked and set(users.acked) <= _ids(pair, "tgt")
    assert at_fence["equal"], at_fence["differences"]
    assert at_fence["rows_compared"] == compared["rows_compared"]
    assert at_fence["sequences_compared"] == 0  # the cutover copied and guarded them in its fence
    held = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{HOLDER}'"
    for side in ("src", "tgt"):
        _wait(lambda side=side: pair.scalar(side, held) == "0", 10, "the snapshot holders to end")
    with pytest.raises(_compare._pg.PgError, match="cannot read the source as of the fence instant"):
        _compare.run_compare(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), snapshots=report["snapshots"])
    # A second run has nothing to do.
    again = _cutover.run_cutover(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair))
    assert again["state"] == "done" and again["changed"] is False
    # The reverse subscription logs in as the return path's own login: the target's superuser password is
    # nowhere in the source's catalog, and the login can replicate and connect, nothing more.
    conninfo = pair.scalar(
        "src", "SELECT subconninfo FROM pg_subscription WHERE subname = 'odoo_migration_reverse'"
    )
    assert "user=odoo_migration_return_pair" in conninfo.replace("'", "")
    assert pair.passwords["tgt"] not in conninfo and "user=postgres" not in conninfo
    login = pair.query(
        "tgt",
        "SELECT rolsuper, rolreplication, rolcreatedb, rolcreaterole, left(rolpassword, 14) FROM pg_authid"
        " WHERE rolname = 'odoo_migration_return_pair'",
    )
    assert login == [["f", "t", "f", "f", "SCRAM-SHA-256$"]]
    assert report["return_login"] == "odoo_migration_return_pair"
    # The source stays fenced; the reverse path carries target writes back.
    assert _role(pair, "src") == ["f", "1"]
    writer = Writer(pair, "tgt")
    writer.n = 10_000_000
    writer.start()
    time.sleep(1.5)
    back = _cutover.run_cutover(
        pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), **_options(pair, direction="reverse")
    )
    time.sleep(0.3)
    writer.stop()
    print("reverse steps", back["steps"], "write_unavailable_seconds", back["write_unavailable_seconds"])
    assert back["state"] == "switched" and back["write_unavailable_seconds"] < 5
    assert writer.acked and writer.rejected
    assert set(writer.acked) <= _ids(pair, "src")
    assert _role(pair, "src") == ["t", "0"], "the source's app role is restored by the rollback"
    assert _role(pair, "tgt") == ["f", "1"]
    assert pair.scalar("src", "SELECT last_value FROM cut_standalone_seq") == pair.scalar(
        "tgt", "SELECT last_value FROM cut_standalone_seq"
    )
    # The source takes writes again.
    with psycopg.connect(
        **dict(pair.endpoint("src"), user=APP_ROLE, password=APP_PASSWORD), autocommit=True
    ) as c:
        c.execute("INSERT INTO cut_probe (n) VALUES (-1)")
    # Finalize: nothing left, roles restored, idempotent.
    fin = _cutover.run_finalize(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), check_mode=True)
    assert (
        fin["changed"]
        and pair.scalar("src", "SELECT count(*) FROM pg_namespace WHERE nspname = 'odoo_migration'") == "1"
    )
    logins = [RETURN_LOGIN["name"]]
    # Another database of the instance still lets the login connect: this finalize keeps it.
    pair.psql("tgt", "CREATE DATABASE keep_probe", dbname="postgres")
    pair.psql("tgt", f"GRANT CONNECT ON DATABASE keep_probe TO {logins[0]}", dbname="postgres")
    fin = _cutover.run_finalize(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), replication_logins=logins)
    print("finalize", fin["actions"])
    assert fin["changed"]
    assert {"action": "drop", "kind": "login", "side": "target", "name": logins[0], "result": "kept"} in (
        fin["actions"]
    )
    assert pair.scalar("tgt", f"SELECT count(*) FROM pg_roles WHERE rolname = '{logins[0]}'") == "1"
    # That database's finalize (here: the database gone) lets it go.
    pair.psql("tgt", "DROP DATABASE keep_probe", dbname="postgres")
    fin = _cutover.run_finalize(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"), replication_logins=logins)
    assert {"action": "drop", "kind": "login", "side": "target", "name": logins[0], "result": "dropped"} in (
        fin["actions"]
    )
    assert (
        pair.scalar("tgt", "SELECT count(*) FROM pg_roles WHERE rolname = 'odoo_migration_return_pair'")
        == "0"
    )
    for side in ("src", "tgt"):
        assert pair.scalar(side, "SELECT count(*) FROM pg_replication_slots") == "0"
        assert pair.scalar(side, "SELECT count(*) FROM pg_publication") == "0"
        assert pair.scalar(side, "SELECT count(*) FROM pg_subscription") == "0"
        assert pair.scalar(side, "SELECT count(*) FROM pg_namespace WHERE nspname = 'odoo_migration'") == "0"
        assert _role(pair, side) == ["t", "0"]
    assert _cutover.run_finalize(pair.pg_endpoint("src"), pair.pg_endpoint("tgt"))["changed"] is False


def test_a_failing_statement_with_a_password_stays_out_of_the_server_log(pair):
    """PostgreSQL logs a failing statement whole; the engine's statements that carry a password do not
    reach the log (the plain statement, run the same way, does: the test can see a leak)."""
    statement = "ALTER ROLE no_such_role_here LOGIN PASSWORD 'mark-%s'"
    with psycopg.connect(**pair.endpoint("tgt"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute(statement % "plain")
        with pytest.raises(psycopg.errors.UndefinedObject):
            _pg.execute_with_secret(conn, statement % "quiet")
        # The settings were local to the statement's transaction.
        assert conn.execute("SHOW log_min_error_statement").fetchone()[0] == "error"
    time.sleep(1)
    logs = pp.docker("logs", pair.container("tgt"))
    log = logs.stdout + logs.stderr
    assert "mark-plain" in log
    assert 'role "no_such_role_here" does not exist' in log and "mark-quiet" not in log


def test_compare_finds_real_row_differences_and_stops_at_max_differences(pair):
    """Two small databases with known differences: the compare names each one by key, and
    max_differences stops the whole compare (not one table's chunks)."""
    for name in ("cmp_left", "cmp_right"):
        pair.psql("tgt", f"DROP DATABASE IF EXISTS {name}", dbname="postgres")
        pair.psql("tgt", f"CREATE DATABASE {name}", dbname="postgres")
        pair.psql(
            "tgt",
            "CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text);"
            "INSERT INTO a SELECT g, 'x' || g FROM generate_series(1, 500) g;"
            "INSERT INTO b SELECT g, 'y' || g FROM generate_series(1, 500) g",
            dbname=name,
        )
    pair.psql(
        "tgt",
        "DELETE FROM a WHERE id = 7; UPDATE a SET v = 'changed' WHERE id = 300;"
        "INSERT INTO b VALUES (501, 'extra')",
        dbname="cmp_right",
    )
    left, right = pair.pg_endpoint("tgt", "cmp_left"), pair.pg_endpoint("tgt", "cmp_right")
    whole = _compare.run_compare(left, right, chunk_rows=100)
    assert not whole["equal"] and not whole["stopped_at_max_differences"]
    by_table = dict((d["table"], d) for d in whole["differences"])
    assert set(by_table) == {'"public"."a"', '"public"."b"'}
    keys_a = [(d["chunk"], d["missing_on_target"], d["different"]) for d in whole["differences"]
              if d["table"] == '"public"."a"']  # fmt: skip
    assert keys_a == [([1, 101], ["(7)"], []), ([201, 301], [], ["(300)"])]
    assert by_table['"public"."b"']["extra_on_target"] == ["(501)"]
    assert whole["rows_compared"] == 1000
    first = _compare.run_compare(left, right, chunk_rows=100, max_differences=1)
    assert first["stopped_at_max_differences"] and not first["equal"]
    assert [(d["table"], d["chunk"]) for d in first["differences"]] == [('"public"."a"', [1, 101])]
    # It stopped: table b was never read.
    assert first["tables_compared"] == 1 and first["rows_compared"] == 100
    for name in ("cmp_left", "cmp_right"):
        pair.psql("tgt", f"DROP DATABASE {name}", dbname="postgres")
