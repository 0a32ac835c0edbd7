"""The database phases as roles, on the lab's legacy-vm-1 (PostgreSQL 17) to the target (18), with a writer.

discover -> replicate (pg_replicate_allow_restart=true) -> cutover -> rollback -> finalize, each through
its playbook with `--limit legacy-vm-1` and a temporary state directory. A writer inserts into a table
of `acme` as Odoo's own role `odoo` through 127.0.0.1:5441 during replicate and cutover, and logs every
commit it saw acknowledged; then a writer on the target during the rollback.

The `odoo` role has no password and pg_hba admits only the migration login from the network, so the
test gives the writer its own way in: a temporary password on `odoo` and a pg_hba rule for `odoo` on
`acme` only. A session of `odoo_migration` doing `SET ROLE odoo` would not do: the fence acts on
logins (NOLOGIN, role-level default_transaction_read_only applied at login, sessions terminated by
their login role), so such a writer would keep writing into the fenced source.

Teardown puts the lab back as it was: leftovers finalized, `acme` and the roles the copy created
dropped on the target, the writer's table, replica identities, the `odoo` role's password and
settings, pg_hba and the server settings (ALTER SYSTEM RESET + restart) restored on the VM, Odoo
healthy. It runs last (file name) so test_lab.py can prove the lab intact afterwards.
"""

import json
import secrets
import threading
import time
import urllib.request

import psycopg
import pytest
import yaml
from conftest import LEGACY_VMS, ansible_adhoc, lab_secret, run_playbook
from psycopg import sql

pytestmark = pytest.mark.lab

HOST = "legacy-vm-1"
DATABASE = "acme"
APP_ROLE = "odoo"
# The application's own role on the shared target (the plan's target_roles, named from the instance).
TARGET_APP_ROLE = "odoo_legacy_vm_1"
TABLE = "lab_cutover_writer"
# The target's subscription replicates as this login on the VM, made by pg_replicate.
FORWARD_LOGIN = "odoo_migration_forward_legacy_vm_1"
SETTINGS = ("wal_level", "max_replication_slots", "max_wal_senders")
HBA_MARKER = "# {mark} lab cutover writer (tests/integration/test_pg_migration_lab.py)"
PG_CONF_DIR = "/etc/postgresql/17/main"
PG_UNIT = "postgresql@17-main"


def source_ep(user="odoo_migration", password=None, dbname=DATABASE):
    if password is None:
        password = lab_secret(f"{HOST}-source-postgres-password")[0]
    return dict(
        host="127.0.0.1",
        port=LEGACY_VMS[HOST]["lab_pg_host_port"],
        user=user,
        password=password,
        dbname=dbname,
        connect_timeout=5,
    )


def target_ep(user="postgres", password=None, dbname=DATABASE):
    if password is None:
        password = lab_secret("target-postgres-password")[0]
    return dict(host="127.0.0.1", port=5418, user=user, password=password, dbname=dbname, connect_timeout=5)


def rows(ep, query, params=None):
    with psycopg.connect(**ep, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def run_sql(ep, *statements):
    with psycopg.connect(**ep, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def playbook(name, state_dir, *extra, timeout=600):
    started = time.monotonic()
    rc, report, output = run_playbook(
        name, "--limit", HOST, "-e", f"odoo_migration_state_dir={state_dir}", *extra, timeout=timeout
    )
    print(f"{name}: rc={rc} in {time.monotonic() - started:.1f} s")
    for secret in (
        lab_secret(f"{HOST}-source-postgres-password")[0],
        lab_secret("target-postgres-password")[0],
    ):
        assert secret not in output, f"a password appeared in the output of {name}"
    if rc != 0:
        print(f"{name} failed:", json.dumps(failures(report), default=str)[:8000])
    return rc, report


def failures(report):
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(HOST, {})
            if result.get("failed"):
                for item in result.get("results") or [result]:
                    if item.get("failed"):
                        found.append(
                            (
                                task["task"]["name"],
                                item.get("msg"),
                                item.get("abort_reason"),
                                item.get("gates"),
                            )
                        )
    return found


def odoo_health():
    url = f"http://127.0.0.1:{LEGACY_VMS[HOST]['lab_http_port']}/web/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except OSError:
        return None


class Writer(threading.Thread):
    """Inserts one row per commit as the application role; logs acknowledged and rejected commits."""

    def __init__(self, ep, start_n, side):
        super().__init__(daemon=True)
        self.ep = ep
        self.n = start_n
        self.side = side
        self.acked = []
        self.rejected = []
        self.stop_event = threading.Event()
        self.conn = None

    def run(self):
        while not self.stop_event.is_set():
            self.n += 1
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(**self.ep, autocommit=True)
                self.conn.execute(
                    sql.SQL("INSERT INTO {} (n, side) VALUES (%s, %s)").format(sql.Identifier(TABLE)),
                    (self.n, self.side),
                )
                self.acked.append(self.n)
            except psycopg.Error as error:
                self.rejected.append(
                    (self.n, str(error).splitlines()[0] if str(error) else type(error).__name__)
                )
                try:
                    if self.conn is not None:
                        self.conn.close()
                except psycopg.Error:
                    pass
                self.conn = None
                time.sleep(0.05)
            time.sleep(0.01)

    def stop(self):
        self.stop_event.set()
        self.join(15)
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass


def written(ep):
    return {int(r[0]) for r in rows(ep, sql.SQL("SELECT n FROM {}").format(sql.Identifier(TABLE)))}


def sequences(ep):
    return dict(
        rows(
            ep,
            "SELECT format('%I.%I', schemaname, sequencename), coalesce(last_value::text, 'not called')"
            " FROM pg_sequences WHERE schemaname <> 'odoo_migration'",
        )
    )


def migration_objects(ep):
    return {
        "slots": rows(
            ep, "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'odoo_migration%%'"
        ),
        "publications": rows(ep, "SELECT pubname FROM pg_publication"),
        "subscriptions": rows(ep, "SELECT subname FROM pg_subscription"),
        "helper_schema": rows(ep, "SELECT nspname FROM pg_namespace WHERE nspname = 'odoo_migration'"),
    }


def forward_login_state(ep):
    """The forward login on the VM (superuser, replication) and the pg_hba.conf rules naming it."""
    return {
        "role": rows(
            ep, "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = %s", (FORWARD_LOGIN,)
        ),
        "hba": rows(
            ep,
            "SELECT database, address, auth_method FROM pg_hba_file_rules WHERE %s = ANY(user_name)",
            (FORWARD_LOGIN,),
        ),
    }


def role_state(ep):
    return rows(
        ep,
        "SELECT r.rolcanlogin, (SELECT array_agg(c ORDER BY c)"
        " FROM pg_db_role_setting s, unnest(s.setconfig) c"
        " WHERE s.setrole = r.oid) FROM pg_roles r WHERE r.rolname = %s",
        (APP_ROLE,),
    )


def replica_identities(ep):
    return rows(
        ep,
        "SELECT c.oid::regclass::text, c.relreplident,"
        " (SELECT x.indexrelid::regclass::text FROM pg_index x WHERE x.indrelid = c.oid AND x.indisreplident)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p')"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'odoo_migration')"
        " AND n.nspname NOT LIKE 'pg_toast%%' ORDER BY 1",
    )


def drop_subscriptions(ep):
    """Detach every subscription of this database from its slot and drop it (never reaching the peer)."""
    for (name,) in rows(
        ep,
        "SELECT subname FROM pg_subscription"
        " WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ):
        ident = sql.Identifier(name)
        run_sql(
            ep,
            sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident),
            sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident),
            sql.SQL("DROP SUBSCRIPTION {}").format(ident),
        )


def drop_slots(ep):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        slots = rows(
            ep,
            "SELECT slot_name, active_pid FROM pg_replication_slots WHERE slot_name LIKE 'odoo_migration%%'",
        )
        if not slots:
            return
        for name, pid in slots:
            if pid:
                rows(ep, "SELECT pg_terminate_backend(%s)", (pid,))
            else:
                rows(ep, "SELECT pg_drop_replication_slot(%s)", (name,))
        time.sleep(0.5)


class LabSnapshot:
    """What the test changes on the lab, read before, put back after."""

    def __init__(self):
        self.target_roles = {r[0] for r in rows(target_ep(dbname="postgres"), "SELECT rolname FROM pg_roles")}
        self.target_claims = bool(
            rows(target_ep(dbname="postgres"), "SELECT 1 FROM pg_namespace WHERE nspname = 'odoo_migration'")
        )
        self.target_databases = {
            r[0] for r in rows(target_ep(dbname="postgres"), "SELECT datname FROM pg_database")
        }
        self.app_role = rows(
            source_ep(dbname="postgres"),
            "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s",
            (APP_ROLE,),
        )[0]
        self.app_role_state = role_state(source_ep())
        self.replica_identities = replica_identities(source_ep())
        self.settings = dict(
            rows(
                source_ep(dbname="postgres"),
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (list(SETTINGS),),
            )
        )


def hba(state):
    args = {"path": f"{PG_CONF_DIR}/pg_hba.conf", "marker": HBA_MARKER, "state": state}
    if state == "present":
        args["block"] = f"host    {DATABASE}    {APP_ROLE}    0.0.0.0/0    scram-sha-256"
    result = ansible_adhoc(HOST, "ansible.builtin.blockinfile", json.dumps(args), become=True)[HOST]
    assert not result.get("failed"), result
    rows(source_ep(dbname="postgres"), "SELECT pg_reload_conf()")


def drop_forward_login_hba():
    """What finalize removes, removed here too when the test stopped before it."""
    args = {
        "path": f"{PG_CONF_DIR}/pg_hba.conf",
        "marker": "# {mark} sysgenpro.odoo_migration forward replication login",
        "state": "absent",
    }
    result = ansible_adhoc(HOST, "ansible.builtin.blockinfile", json.dumps(args), become=True)[HOST]
    assert not result.get("failed"), result
    rows(source_ep(dbname="postgres"), "SELECT pg_reload_conf()")


def restore_lab(snapshot):
    """Put the lab back as it was, step by step; every step is tried, errors are raised at the end."""
    errors = []

    def step(what, function, *args):
        try:
            function(*args)
        except Exception as error:  # noqa: BLE001 - every step must be tried
            errors.append(f"{what}: {error}")

    # Target first: its subscription must not keep reading the source's slot.
    if DATABASE not in snapshot.target_databases:
        if DATABASE in {r[0] for r in rows(target_ep(dbname="postgres"), "SELECT datname FROM pg_database")}:
            step("target subscriptions", drop_subscriptions, target_ep())
            step("target slots", drop_slots, target_ep())
            step(
                "drop acme on the target",
                run_sql,
                target_ep(dbname="postgres"),
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(DATABASE)),
            )
        for (role,) in rows(target_ep(dbname="postgres"), "SELECT rolname FROM pg_roles"):
            if role not in snapshot.target_roles:
                step(
                    f"drop role {role} on the target",
                    run_sql,
                    target_ep(dbname="postgres"),
                    sql.SQL("DROP ROLE {}").format(sql.Identifier(role)),
                )
    if not snapshot.target_claims:
        step(
            "forget the claims on the target",
            run_sql,
            target_ep(dbname="postgres"),
            sql.SQL("DROP SCHEMA IF EXISTS odoo_migration CASCADE"),
        )
    # Source: what the migration left, then what the test itself changed.
    step("source subscriptions", drop_subscriptions, source_ep())
    step("source slots", drop_slots, source_ep())
    step(
        "source publications and helper schema",
        run_sql,
        source_ep(),
        "DROP PUBLICATION IF EXISTS odoo_migration",
        "DROP PUBLICATION IF EXISTS odoo_migration_reverse",
        "DROP SCHEMA IF EXISTS odoo_migration CASCADE",
        sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)),
    )
    before = {name: (ident, index) for name, ident, index in snapshot.replica_identities}
    for name, ident, index in replica_identities(source_ep()):
        if name in before and before[name] != (ident, index):
            old_ident, old_index = before[name]
            clause = {"d": "DEFAULT", "f": "FULL", "n": "NOTHING"}.get(old_ident)
            statement = (
                f"ALTER TABLE {name} REPLICA IDENTITY {clause}"
                if clause
                else f"ALTER TABLE {name} REPLICA IDENTITY USING INDEX {old_index.split('.')[-1]}"
            )
            step(f"replica identity of {name}", run_sql, source_ep(), statement)
    can_login, password = snapshot.app_role
    step(
        "odoo role",
        run_sql,
        source_ep(dbname="postgres"),
        sql.SQL("ALTER ROLE {} {} PASSWORD {}").format(
            sql.Identifier(APP_ROLE),
            sql.SQL("LOGIN" if can_login else "NOLOGIN"),
            sql.Literal(password) if password else sql.SQL("NULL"),
        ),
    )
    if not any("default_transaction_read_only" in c for c in (snapshot.app_role_state[0][1] or [])):
        step(
            "odoo role setting",
            run_sql,
            source_ep(dbname="postgres"),
            sql.SQL("ALTER ROLE {} RESET default_transaction_read_only").format(sql.Identifier(APP_ROLE)),
        )
    step("pg_hba", hba, "absent")
    step("forward login's pg_hba.conf lines", drop_forward_login_hba)
    step(
        "forward login",
        run_sql,
        source_ep(dbname="postgres"),
        sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(FORWARD_LOGIN)),
    )
    step(
        "server settings",
        run_sql,
        source_ep(dbname="postgres"),
        *[f"ALTER SYSTEM RESET {name}" for name in SETTINGS],
    )
    step(
        "restart PostgreSQL",
        lambda: ansible_adhoc(
            HOST, "ansible.builtin.systemd_service", f"name={PG_UNIT} state=restarted", become=True
        ),
    )
    deadline = time.monotonic() + 180
    while odoo_health() != 200 and time.monotonic() < deadline:
        time.sleep(2)
    if odoo_health() != 200:
        errors.append("Odoo did not answer /web/health after the restore")
    try:
        after = dict(
            rows(
                source_ep(dbname="postgres"),
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (list(SETTINGS),),
            )
        )
        if after != snapshot.settings:
            errors.append(f"settings {after} != {snapshot.settings}")
        if replica_identities(source_ep()) != snapshot.replica_identities:
            errors.append("replica identities differ from before")
        if role_state(source_ep()) != snapshot.app_role_state:
            errors.append(f"odoo role {role_state(source_ep())} != {snapshot.app_role_state}")
    except psycopg.Error as error:
        errors.append(f"reading the restored source: {error}")
    if errors:
        raise AssertionError("the lab was not fully restored: " + "; ".join(errors))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if DATABASE in {r[0] for r in rows(target_ep(dbname="postgres"), "SELECT datname FROM pg_database")}:
        pytest.fail(
            f"the target already has a database {DATABASE}: a leftover of an earlier run; drop it first"
        )
    snapshot = LabSnapshot()
    assert snapshot.settings["wal_level"] == "replica", snapshot.settings
    writer_password = secrets.token_urlsafe(18)
    try:
        run_sql(
            source_ep(),
            sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, n bigint NOT NULL UNIQUE, side text NOT NULL,"
                " at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ).format(sql.Identifier(TABLE)),  # fmt: skip
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(TABLE), sql.Identifier(APP_ROLE)),
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(writer_password)
            ),
        )
        hba("present")
        yield {"state_dir": tmp_path_factory.mktemp("migration-state"), "writer_password": writer_password}
    finally:
        restore_lab(snapshot)


def test_discover_replicate_cutover_rollback_finalize_with_a_writer(lab):
    state_dir = lab["state_dir"]
    started = time.monotonic()
    rc, report = playbook("discover.yml", state_dir)
    assert rc == 0, failures(report)
    facts = yaml.safe_load((state_dir / HOST / "facts.yml").read_text())
    plan = yaml.safe_load((state_dir / HOST / "plan.yml").read_text())
    assert plan["databases"] == [DATABASE]
    assert facts["instance"]["database_server"]["user"] == APP_ROLE

    # Writer on the source, as Odoo's role, during replicate and cutover.
    writer = Writer(source_ep(user=APP_ROLE, password=lab["writer_password"]), 0, "source")
    writer.start()
    try:
        time.sleep(1)
        rc, report = playbook("replicate.yml", state_dir, "-e", "pg_replicate_allow_restart=true")
        assert rc == 0, failures(report)
        assert report["stats"][HOST]["changed"] > 0
        print(
            "replicate done after", round(time.monotonic() - started, 1), "s; writer acked", len(writer.acked)
        )
        # The target's catalog holds the forward login, never the migration login's key to the VM.
        subscription = rows(
            target_ep(), "SELECT subconninfo FROM pg_subscription WHERE subname = 'odoo_migration'"
        )[0][0]
        assert f"user={FORWARD_LOGIN}" in subscription.replace("'", "")
        assert lab_secret(f"{HOST}-source-postgres-password")[0] not in subscription
        assert forward_login_state(source_ep()) == {
            "role": [(False, True)],
            "hba": [(["acme"], "samenet", "scram-sha-256")],
        }
        time.sleep(1.5)
        acked_before_cutover = len(writer.acked)
        rc, report = playbook("cutover.yml", state_dir)
        assert rc == 0, failures(report)
        time.sleep(0.5)
    finally:
        writer.stop()
    assert len(writer.acked) > acked_before_cutover > 50, (acked_before_cutover, len(writer.acked))
    cutover = yaml.safe_load((state_dir / HOST / "cutover.yml").read_text())
    result = cutover["databases"][DATABASE]
    print("cutover", json.dumps({k: v for k, v in result.items() if k != "steps"}, default=str))
    print("cutover steps", result["steps"])
    assert cutover["application_roles"] == [APP_ROLE]
    assert result["state"] == "switched" and result["point_of_no_return_passed"] and not result["aborted"]
    assert (
        isinstance(result["write_unavailable_seconds"], float)
        and 0 < result["write_unavailable_seconds"] < 10
    )
    assert [s["step"] for s in result["steps"]][:3] == ["prepare", "gate", "fence"]
    assert result["compare"]["equal"], result["compare"]
    assert result["compare"]["tables_compared"] > 100 and result["compare"]["rows_compared"] > 1000
    assert result["sequences"]["guard_violations"] == []

    # Every acknowledged commit is on the target, every rejected one is not; sequences equal.
    on_target = written(target_ep())
    missing = set(writer.acked) - on_target
    assert not missing, f"{len(missing)} acknowledged commits missing on the target: {sorted(missing)[:20]}"
    assert writer.rejected, "writes during the restart and the fence must be rejected with an error"
    assert not ({n for n, _ in writer.rejected} & on_target), "a rejected write was stored"
    source_sequences, target_sequences = sequences(source_ep()), sequences(target_ep())
    assert len(source_sequences) > 100
    assert source_sequences == target_sequences, {
        k: (v, target_sequences.get(k)) for k, v in source_sequences.items() if target_sequences.get(k) != v
    }
    print(
        f"source writer: {len(writer.acked)} acknowledged, all on the target;",
        f"{len(writer.rejected)} rejected:",
        sorted({m for _, m in writer.rejected})[:5],
    )
    assert role_state(source_ep())[0][0] is False, "the source's application role stays fenced"

    # A second cutover has nothing to do.
    rc, report = playbook("cutover.yml", state_dir)
    assert rc == 0, failures(report)
    assert report["stats"][HOST]["changed"] == 0

    # Writes on the target (the application there), then rollback: every one is back on the source.
    run_sql(
        target_ep(dbname="postgres"),
        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(TARGET_APP_ROLE), sql.Literal(lab["writer_password"])
        ),
    )
    back_writer = Writer(
        target_ep(user=TARGET_APP_ROLE, password=lab["writer_password"]), 10_000_000, "target"
    )
    back_writer.start()
    try:
        time.sleep(2)
        rc, report = playbook("rollback.yml", state_dir)
        assert rc == 0, failures(report)
        time.sleep(0.5)
    finally:
        back_writer.stop()
    rollback = yaml.safe_load((state_dir / HOST / "rollback.yml").read_text())["databases"][DATABASE]
    print(
        "rollback",
        rollback["write_unavailable_seconds"],
        "s;",
        [(s["step"], s["seconds"]) for s in rollback["steps"]],
    )
    assert rollback["state"] == "switched" and not rollback["aborted"]
    assert back_writer.acked and back_writer.rejected
    on_source = written(source_ep())
    missing = set(back_writer.acked) - on_source
    assert not missing, f"{len(missing)} target commits missing on the source: {sorted(missing)[:20]}"
    assert set(writer.acked) <= on_source
    assert (
        sequences(source_ep())[f"public.{TABLE}_id_seq"] == sequences(target_ep())[f"public.{TABLE}_id_seq"]
    )
    assert role_state(source_ep())[0][0] is True, "the rollback gives the source's application role back"
    print(
        f"target writer: {len(back_writer.acked)} acknowledged, all on the source;",
        f"{len(back_writer.rejected)} rejected",
    )

    # Finalize: nothing of the migration left on either side; a second run changes nothing.
    rc, report = playbook("finalize.yml", state_dir)
    assert rc == 0, failures(report)
    for ep in (source_ep(), target_ep()):
        assert migration_objects(ep) == {
            "slots": [],
            "publications": [],
            "subscriptions": [],
            "helper_schema": [],
        }
    assert forward_login_state(source_ep()) == {"role": [], "hba": []}
    rc, report = playbook("finalize.yml", state_dir)
    assert rc == 0 and report["stats"][HOST]["changed"] == 0, failures(report)
    print("whole path in", round(time.monotonic() - started, 1), "s")
