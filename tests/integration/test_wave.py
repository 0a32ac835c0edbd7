"""A whole wave on the lab: both VMs moved from Odoo on a VM to Odoo in Docker, one of them forced to fail.

playbooks/wave.yml runs discover -> containerize -> replicate -> application cutover -> report for
wave1 with a temporary state directory. Once legacy-vm-2's globex replicates, a row is written on
the target behind the migration's back, so the compare of the fence instant (run after the page is
lifted, while users already work on the containers) finds it and legacy-vm-2 must roll back alone,
every write its users made on the containers going back to the VM, while legacy-vm-1 completes.
A writer creates partners through Odoo's own JSON-RPC on legacy-vm-1's public
nginx during the whole cutover and logs every create Odoo acknowledged; each one must be in the
target database afterwards.

Teardown moves legacy-vm-1 back with playbooks/app_rollback.yml, finalizes both VMs, and removes what
the wave created on the Docker host and the target with lab/playbooks/clear_wave.yml (containers,
volumes, databases, roles). The VMs keep wal_level=logical.
"""

import datetime
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import LEGACY_VMS, STATE_DIR, OdooApi, lab_secret, run_playbook
from conftest import lab_target as target

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".build" / "collections"))
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit.journal import read_journal  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "files"))
import odoo_jsonrpc_writer as writer_module  # noqa: E402
from odoo_jsonrpc_writer import JsonRpcWriter, OdooSession  # noqa: E402

pytestmark = pytest.mark.lab

MOVED, FAILED = "legacy-vm-1", "legacy-vm-2"
WRITER_HOST_HEADER = "legacy-vm-1.lab.internal"
# Both VMs' Odoo log in as `odoo` on their own PostgreSQL; on the shared target each has its own role.
TARGET_ROLES = {MOVED: "odoo_legacy_vm_1", FAILED: "odoo_legacy_vm_2"}
DATABASES = {MOVED: ["acme"], FAILED: ["globex", "initech"]}


def source_acme():
    """legacy-vm-1's acme as the migration login (a superuser, never fenced)."""
    return dict(
        host="127.0.0.1",
        port=LEGACY_VMS[MOVED]["lab_pg_host_port"],
        user="odoo_migration",
        password=lab_secret(f"{MOVED}-source-postgres-password")[0],
        dbname="acme",
    )


class LargeObjectWriter(threading.Thread):
    """Rewrites acme's large object while the wave replicates it, as an add-on would.

    Once the target's copy of acme is subscribed, it writes a new content every half second
    until the application's role is fenced on the source; every write it made must be on the
    target after the cutover (replication does not carry large objects: the fence does)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.written = []
        self.error = None

    def _subscribed(self):
        try:
            with psycopg.connect(**target("acme"), connect_timeout=3) as conn:
                return conn.execute(
                    "SELECT value = 'done' FROM odoo_migration.copy_state WHERE key = 'subscription'"
                ).fetchone() == (True,)
        except psycopg.Error:
            return False

    def run(self):
        try:
            while not self.stop.is_set() and not self._subscribed():
                time.sleep(0.5)
            with psycopg.connect(**source_acme(), autocommit=True) as conn:
                blob = conn.execute("SELECT blob_oid FROM lab_document_blob ORDER BY id LIMIT 1").fetchone()[
                    0
                ]
                while not self.stop.is_set():
                    with conn.transaction():
                        fenced = conn.execute("SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = 'odoo'")
                        if fenced.fetchone()[0]:
                            return
                        content = f"written during the wave {len(self.written) + 1} {time.time()}"
                        conn.execute("SELECT lo_truncate(lo_open(%s, 131072), 0)", (blob,))
                        conn.execute("SELECT lo_put(%s, 0, convert_to(%s, 'UTF8'))", (blob, content))
                    self.written.append((blob, content))
                    time.sleep(0.5)
        except Exception as error:  # reported by the test
            self.error = error


class StrayRow(threading.Thread):
    """Once the target's globex follows legacy-vm-2, writes one row there that the VM never has
    (a fault: somebody wrote on the target behind the migration), so the compare must fail."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.written = None
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    with psycopg.connect(**target("globex"), connect_timeout=3, autocommit=True) as conn:
                        done = conn.execute(
                            "SELECT value = 'done' FROM odoo_migration.copy_state WHERE key = 'subscription'"
                        ).fetchone()
                        if done == (True,):
                            conn.execute(
                                "INSERT INTO lab_audit_log (logged_at, source, message) "
                                "VALUES (now(), 'test', 'written on the target behind the migration')"
                            )
                            self.written = True
                            return
                except psycopg.Error:
                    pass
                time.sleep(0.5)
        except Exception as error:  # reported by the test
            self.error = error


@pytest.fixture(scope="module")
def wave(tmp_path_factory):
    state = tmp_path_factory.mktemp("wave-state")
    wave1 = ("-e", "wave=wave1", "-e", f"odoo_migration_state_dir={state}")
    # The baseline let directory users log in to acme (auth_ldap over StartTLS); alice is one.
    for playbook in ("discover.yml", "identity.yml"):
        rc, _report, output = run_playbook(
            playbook, "--limit", MOVED, *wave1, "-e", "odoo_migration_odoo_ldap=true"
        )
        assert rc == 0, output[-3000:]
    alice = OdooApi(MOVED, "acme").directory_user("alice")
    session = OdooSession(
        f"http://127.0.0.1:{LEGACY_VMS[MOVED]['lab_http_port']}",
        WRITER_HOST_HEADER,
        "acme",
        lab_secret("odoo-admin-password")[0],
    )
    acknowledged_at = []
    writer = JsonRpcWriter(
        session, on_acknowledged=lambda _name: acknowledged_at.append(datetime.datetime.now(datetime.UTC))
    )
    writer.start()
    # The other tenant's users write too, while it moves and rolls back.
    failed_writer = JsonRpcWriter(
        OdooSession(
            f"http://127.0.0.1:{LEGACY_VMS[FAILED]['lab_http_port']}",
            "globex.lab.internal",
            "globex",
            lab_secret("odoo-admin-password")[0],
        )
    )
    failed_writer.start()
    large_objects = LargeObjectWriter()
    large_objects.start()
    stray = StrayRow()
    stray.start()
    started = time.monotonic()
    rc, report, output = run_playbook(
        "wave.yml", *wave1, "-e", "odoo_migration_allow_restart=true", timeout=1500
    )
    seconds = time.monotonic() - started
    time.sleep(3)
    writer.stop.set()
    writer.join(15)
    failed_writer.stop.set()
    failed_writer.join(15)
    # The moved host's containers have had the whole wave to run their scheduled jobs.
    cron_log = docker_output(["logs", f"odoo-{MOVED}-cron"], stderr=True)
    # The wave's own report, before the re-run below writes one for the moved host alone.
    report_text = (state / "reports" / "wave-wave1.md").read_text()
    # Monitoring followed the moved instance: what Prometheus watches once it serves from containers.
    watched_after_move = _watched_once_moved(MOVED)
    rerun_rc, rerun_report, rerun_output = run_playbook("wave.yml", "--limit", MOVED, *wave1, timeout=900)
    # --check on the host that rolled back: it runs clean and changes nothing, not even its state.
    state_before = _state_files(state / FAILED)
    check_run = run_playbook("wave.yml", "--check", "--limit", FAILED, *wave1, timeout=900)
    check = dict(zip(("rc", "report", "output"), check_run, strict=True))
    check["state_unchanged"] = _state_files(state / FAILED) == state_before
    large_objects.stop.set()
    large_objects.join(15)
    stray.stop.set()
    stray.join(15)
    print(
        f"wave.yml: rc={rc} in {seconds:.1f} s; "
        f"writer: {len(writer.acknowledged)} acknowledged, {writer.errors} errors"
    )
    yield dict(
        rc=rc,
        report=report,
        output=output,
        state=state,
        writer=writer,
        acknowledged_at=acknowledged_at,
        failed_writer=failed_writer,
        large_objects=large_objects,
        stray=stray,
        cron_log=cron_log,
        report_text=report_text,
        watched_after_move=watched_after_move,
        rerun=(rerun_rc, rerun_report, rerun_output),
        check=check,
        alice=alice,
    )

    if os.environ.get("ODOO_MIG_KEEP_WAVE"):
        return  # left as moved, for a look (make lab-down or clear_wave.yml ends it)
    back_rc, _report, back_output = run_playbook(
        "app_rollback.yml", "--limit", MOVED, "-e", f"odoo_migration_state_dir={state}", timeout=900
    )
    if back_rc == 0:
        OdooApi(MOVED, "acme").forget_directory_logins(alice)
    final_rc, _report, final_output = run_playbook("finalize.yml", *wave1, timeout=600)

    clear_rc, _report, clear_output = run_playbook("lab/playbooks/clear_wave.yml", timeout=300)
    assert back_rc == 0, back_output[-3000:]
    assert final_rc == 0, final_output[-3000:]
    assert clear_rc == 0, clear_output[-3000:]


def _state_files(directory):
    """Every state file of a host and its bytes, but the audit journal (a check run is recorded there)."""
    return dict(
        (path.name, path.read_bytes())
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != "journal.jsonl"
    )


def docker_output(args, stderr=False):
    """What a docker command printed, stripped; an error prints nothing, so the assertion names it."""
    run = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    return (run.stdout + (run.stderr if stderr else "")).strip()


def _prometheus(query):
    url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]["result"]


def _watched_once_moved(host, timeout=90):
    """The series Prometheus has for the host's probes and PostgreSQL once they target its containers (waits
    until every probe of the containers succeeded once, or the timeout)."""
    query = f'probe_success{{instance_of="{host}",serving="containers"}} or pg_up{{instance_of="{host}"}}'
    deadline = time.monotonic() + timeout
    while True:
        series = [(result["metric"], result["value"][1]) for result in _prometheus(query)]
        probes = [value for metric, value in series if metric["__name__"] == "probe_success"]
        if (len(probes) >= 2 and set(probes) == {"1"}) or time.monotonic() > deadline:
            return series
        time.sleep(3)


def state_file(wave, host, name):
    return yaml.safe_load((wave["state"] / host / name).read_text())


def test_the_wave_reports_the_rolled_back_host_as_a_failure(wave):
    # The failure the test forced (a row written on the target behind the migration), and no other:
    # ansible-playbook's exit code for failed hosts, the host named, the compare that found the row.
    assert wave["rc"] == 2, wave["output"][-3000:]
    assert f"{FAILED} was rolled back to its VM" in wave["output"]
    assert "comparison found differences" in wave["output"]
    failed_hosts = [host for host, stats in wave["report"]["stats"].items() if stats["failures"]]
    assert failed_hosts == [FAILED]


def test_monitoring_follows_the_moved_instance_to_its_containers(wave):
    series = wave["watched_after_move"]
    probes = {
        (metric["job"], metric["instance"]): value
        for metric, value in series
        if metric["__name__"] == "probe_success"
    }
    web = f"http://odoo-{MOVED}-web:8069"
    assert probes == {("odoo_health", f"{web}/web/health"): "1", ("odoo_login", f"{web}/jsonrpc"): "1"}, (
        series
    )
    # Its PostgreSQL is watched on the target now, and on the VM until finalize retires it (the reverse path).
    pg_up = {(metric["serving"], value) for metric, value in series if metric["__name__"] == "pg_up"}
    assert pg_up == {("containers", "1"), ("vm", "1")}, series
    assert "## Alerts during the wave" in wave["report_text"]
    assert (
        "(http://127.0.0.1:9090/graph?g0.expr=ALERTS%7Binstance_of%3D~%22legacy-vm-1%7Clegacy-vm-2%22%7D"
        in (wave["report_text"])
    )


def test_no_task_failed_on_the_healthy_vm(wave):
    # Named here with their messages, so that a failure of the moved host says where and why.
    failures = [
        (task["task"]["name"], str(task["hosts"][MOVED].get("msg", ""))[:1500])
        for play in wave["report"]["plays"]
        for task in play["tasks"]
        if task["hosts"].get(MOVED, {}).get("failed")
    ]
    failures += [
        (task["task"]["name"], str(item.get("msg", ""))[:1500])
        for play in wave["report"]["plays"]
        for task in play["tasks"]
        for item in task["hosts"].get(MOVED, {}).get("results", [])
        if isinstance(item, dict) and item.get("failed")
    ]
    assert failures == []


def test_the_healthy_vm_is_moved_and_proven(wave):
    app = state_file(wave, MOVED, "app_cutover.yml")
    assert app["outcome"] == "moved", app
    cutover = state_file(wave, MOVED, "cutover.yml")
    assert cutover["databases"]["acme"]["compare"]["equal"] is True
    filestore = app["filestore"]["acme"]
    assert filestore["missing_attachments"] == [] and filestore["corrupt_files"] == []
    assert filestore["verified_files"] == filestore["source_files"] > 0
    # The cron container ran the proof job itself, after users were back (not a lastcall from the VM).
    lastcall = datetime.datetime.fromisoformat(app["cron_proof"]["acme"]).replace(tzinfo=datetime.UTC)
    assert (
        lastcall
        >= task_ends(wave, MOVED)["switch | Send traffic to the containers and lift the maintenance page"]
    )
    image = state_file(wave, MOVED, "image.yml")
    assert image["digest"].startswith("127.0.0.1:5000/odoo/legacy-vm-1@sha256:")
    assert image["secret_scan"]["findings"] == [] and image["secret_scan"]["layers_scanned"] > 0


def test_odoo_answers_from_the_container_through_the_vm_nginx(wave):

    health = docker_output(["inspect", "-f", "{{.State.Health.Status}}", f"odoo-{MOVED}-web"])
    assert health == "healthy"
    # The VM's own Odoo is stopped; nginx on the VM answers, so the answer comes from the container.
    unit = docker_output(["exec", MOVED, "systemctl", "is-active", "odoo"])
    assert unit == "inactive"
    request = urllib.request.Request(
        f"http://127.0.0.1:{LEGACY_VMS[MOVED]['lab_http_port']}/web/health",
        headers={"Host": WRITER_HOST_HEADER},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_a_directory_user_logs_in_to_the_moved_instance_with_her_directory_password(wave):
    # Through the VM's nginx, so the answer comes from the web container (python-ldap, the directory's CA).
    password = lab_secret("directory-alice-password")[0]
    admin = OdooApi(MOVED, "acme")
    assert admin.service("common", "login", "acme", "alice", password) == wave["alice"]
    assert not admin.service("common", "login", "acme", "alice", "not-her-password")
    image = state_file(wave, MOVED, "image.yml")
    assert image["modules_checked"] >= 2  # at least base and auth_ldap: the image can run what acme has


def odoo_log_time(line):
    """The UTC instant an Odoo log line was written (its first two fields)."""
    stamp = datetime.datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S,%f")
    return stamp.replace(tzinfo=datetime.UTC)


def task_ends(wave, host):
    return writer_module.task_ends(wave["state"] / host / "journal.jsonl")


def test_users_wrote_until_the_page_never_during_the_fence_and_again_on_the_containers(wave):
    ended = task_ends(wave, MOVED)
    window = writer_module.window_counts(wave["acknowledged_at"], ended)
    assert window["before_page"] > 0, "no write was acknowledged by the VM before the page"
    assert window["during_fence"] == 0, window
    assert window["after_switch"] > 0, "no write was acknowledged by the containers after the switch"
    page = ended[writer_module.PAGE_TASK]
    lifted = ended[writer_module.LIFT_TASK]
    app = state_file(wave, MOVED, "app_cutover.yml")
    assert 0 < app["maintenance_seconds"] < (lifted - page).total_seconds() + 5
    # Users are back when the containers render a page, which the report shows beside the page's time.
    assert app["maintenance_seconds"] <= app["users_back_seconds"] < app["maintenance_seconds"] + 30
    row = next(line for line in wave["report_text"].splitlines() if line.startswith(f"| {MOVED} |"))
    assert f"| {app['maintenance_seconds']} | {app['users_back_seconds']} |" in row


def test_the_web_container_was_warm_before_the_page_and_wrote_nothing_until_the_switch(wave):
    ended = task_ends(wave, MOVED)
    page = ended["switch | Put the maintenance page in front of the legacy Odoo"]
    # The journal stamps a task when it ends: the container was up before the page was.
    assert ended["prepare | Start the web container before the page"] < page
    # Odoo loaded acme's registry once, at boot, before the page: the first request after the switch
    # found it warm, and nothing the cutover did made it reload.
    log = docker_output(["logs", f"odoo-{MOVED}-web"], stderr=True).splitlines()
    # The websocket's evented process is started apart (not forked from the preloaded server): it loads
    # the registry on its first websocket connection.
    evented = {line.split()[2] for line in log if "Evented Service (longpolling) running" in line}
    loads = [line for line in log if "Registry loaded in" in line and line.split()[2] not in evented]
    assert len(loads) == 1, loads
    assert odoo_log_time(loads[0]) < page
    assert not [line for line in log if "Reloading the model registry" in line]
    # Its role could read acme but not write it until the window gave its writes back: any write the
    # registry load, a health check or the boot tried would have failed and been logged here.
    assert not [line for line in log if "permission denied" in line.lower()]
    cutover = state_file(wave, MOVED, "cutover.yml")["databases"]["acme"]
    assert cutover["writes_released"] == [TARGET_ROLES[MOVED]]
    with psycopg.connect(**target("acme")) as conn:
        (writable,) = conn.execute(
            "SELECT bool_and(has_table_privilege(%s, c.oid, 'INSERT, UPDATE, DELETE'))"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname = 'public'",
            (TARGET_ROLES[MOVED],),
        ).fetchone()
    assert writable


def test_every_write_odoo_acknowledged_during_the_wave_is_on_the_target(wave):
    names = wave["writer"].acknowledged
    assert len(names) > 20, "the writer got too few writes through"
    with psycopg.connect(**target("acme")) as conn:
        present = {
            row[0] for row in conn.execute("SELECT name FROM res_partner WHERE name = ANY(%s)", (names,))
        }
    assert sorted(set(names) - present) == []


def test_the_large_object_written_during_replication_is_on_the_target(wave):
    large_objects = wave["large_objects"]
    assert large_objects.error is None, large_objects.error
    assert large_objects.written, "the large object was never rewritten while the wave replicated"
    blob, last = large_objects.written[-1]
    with psycopg.connect(**target("acme")) as conn:
        content = conn.execute("SELECT convert_from(lo_get(%s), 'UTF8')", (blob,)).fetchone()[0]
    assert content == last
    cutover = state_file(wave, MOVED, "cutover.yml")["databases"]["acme"]
    assert cutover["compare"]["large_objects_compared"] == 1


def test_the_journal_keeps_what_the_copy_left_out_and_carried(wave):
    records = read_journal(str(wave["state"] / MOVED / "journal.jsonl"))
    copies = [r for r in records if r.get("module") == "sysgenpro.odoo_migration.pg_logical_migration"]
    details = [d for r in copies for d in r.get("details", []) if d.get("large_objects")]
    assert [d["database"] for d in details] == ["acme"], copies
    assert details[0]["large_objects"]["copied"] == 1
    # Whatever the source's minor release sets, every option the copy left out is named there.
    assert all(set(item) == {"scope", "option", "objects"} for item in details[0]["schema_options_dropped"])


def test_partitions_view_and_the_bi_login_moved_with_the_database(wave):
    with psycopg.connect(**target("acme")) as conn:
        without_key = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relispartition AND c.relkind = 'r' "
            "AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"
        ).fetchall()
        assert without_key == []
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'lab_event_log'::regclass"
        )
        assert partitions.fetchone()[0] == 5
        events = conn.execute("SELECT count(*) FROM lab_event_log").fetchone()[0]
    bi = target("acme")
    bi_role = "lab_bi_" + MOVED.replace("-", "_")
    bi.update(user=bi_role, password=lab_secret(f"{MOVED}-lab-bi-password")[0])
    with psycopg.connect(**bi) as conn:
        assert conn.execute("SELECT sum(events) FROM lab_reporting.lab_event_summary").fetchone()[0] == events
    cutover = state_file(wave, MOVED, "cutover.yml")["databases"]["acme"]
    assert "lab_reporting.lab_event_summary" in cutover["materialized_views"]["refreshed"]
    assert {"role": bi_role, "action": "logs in on the target with its password from the source"} in (
        cutover["login_roles"]
    )


def test_the_failed_vm_rolled_back_alone_and_serves_again(wave):
    app = state_file(wave, FAILED, "app_cutover.yml")
    assert app["outcome"] == "rolled_back"
    # The forced failure: the compare of the fence instant, after users were back, found the stray row.
    assert wave["stray"].error is None and wave["stray"].written, wave["stray"].error
    assert "comparison found differences" in app["failure"] and "globex" in app["failure"], app["failure"]
    cutover = state_file(wave, FAILED, "cutover.yml")["databases"]
    assert cutover["globex"]["compare"]["equal"] is False and cutover["initech"]["compare"]["equal"] is True
    rollback = state_file(wave, FAILED, "rollback.yml")
    assert set(rollback["databases"]) == {"globex", "initech"}

    unit = docker_output(["exec", FAILED, "systemctl", "is-active", "odoo-erp"])
    assert unit == "active"
    stopped = docker_output(["inspect", "-f", "{{.State.Running}}", f"odoo-{FAILED}-web"])
    assert stopped == "false"
    report = wave["report_text"]
    assert f"| {MOVED} | moved |" in report and f"| {FAILED} | rolled_back |" in report


def _target_login(host, database):
    """The target as the host's containers log in: its own role and its generated password."""
    endpoint = target(database)
    secret = STATE_DIR / "secrets" / "migration" / host / "target-db-password"
    endpoint.update(user=TARGET_ROLES[host], password=secret.read_text().strip())
    return endpoint


def test_each_instance_runs_as_its_own_role_on_the_shared_target(wave):
    env = docker_output(["inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", f"odoo-{MOVED}-web"])
    assert f"PGUSER={TARGET_ROLES[MOVED]}" in env.splitlines()
    with psycopg.connect(**target("postgres")) as conn:
        owners = dict(
            conn.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = ANY(%s)",
                (DATABASES[MOVED] + DATABASES[FAILED],),
            ).fetchall()
        )
        assert owners == {
            "acme": TARGET_ROLES[MOVED],
            "globex": TARGET_ROLES[FAILED],
            "initech": TARGET_ROLES[FAILED],
        }
        # The source's shared name exists nowhere on the target: no tenant can act as the other.
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'odoo'").fetchone()[0] == 0
        moved = conn.execute(
            "SELECT rolcanlogin, shobj_description(oid, 'pg_authid'),"
            " (SELECT setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0)"
            " FROM pg_roles r WHERE rolname = %s",
            (TARGET_ROLES[MOVED],),
        ).fetchone()
        # The other tenant's rollback fenced its own role, not this one.
        assert moved == (True, None, None), moved
        for role, database in ((TARGET_ROLES[FAILED], "acme"), (TARGET_ROLES[MOVED], "globex")):
            allowed = conn.execute("SELECT has_database_privilege(%s, %s, 'CONNECT')", (role, database))
            assert allowed.fetchone()[0] is False, (role, database)
    # The moved host's password still works (the other's move did not change it); only its own databases.
    with psycopg.connect(**_target_login(MOVED, "acme")) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == TARGET_ROLES[MOVED]
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(**_target_login(MOVED, "globex")).close()


def test_the_moved_instances_cron_never_looked_at_the_other_tenants_databases(wave):
    assert wave["cron_log"], "no log from the cron container"
    for database in DATABASES[FAILED]:
        assert database not in wave["cron_log"], f"the cron of {MOVED} named {database}"


def test_the_other_tenants_writes_are_on_its_vm_after_its_rollback(wave):
    names = wave["failed_writer"].acknowledged
    assert len(names) > 20, "the second tenant's writer got too few writes through"
    source = dict(source_acme(), port=LEGACY_VMS[FAILED]["lab_pg_host_port"], dbname="globex")
    source["password"] = lab_secret(f"{FAILED}-source-postgres-password")[0]
    with psycopg.connect(**source) as conn:
        present = {
            row[0] for row in conn.execute("SELECT name FROM res_partner WHERE name = ANY(%s)", (names,))
        }
    assert sorted(set(names) - present) == []


def test_the_report_and_the_journal_name_each_instances_role(wave):
    report = wave["report_text"]
    for role in TARGET_ROLES.values():
        assert f"odoo -> {role}" in report, report
    records = read_journal(str(wave["state"] / MOVED / "journal.jsonl"))
    copies = [r for r in records if r.get("module") == "sysgenpro.odoo_migration.pg_logical_migration"]
    roles = [d["target_roles"] for r in copies for d in r.get("details", []) if d.get("target_roles")]
    assert roles and roles[0]["odoo"] == TARGET_ROLES[MOVED]
    assert roles[0]["lab_reporting"] == "lab_reporting_legacy_vm_1"


def test_a_rerun_of_the_moved_host_changes_nothing_after_the_other_rolled_back(wave):
    rc, report, output = wave["rerun"]
    assert rc == 0, output[-3000:]
    changed = [
        task["task"]["name"]
        for play in report["plays"]
        for task in play["tasks"]
        if task["hosts"].get(MOVED, {}).get("changed")
    ]
    assert report["stats"][MOVED]["changed"] == 0, changed


def test_check_mode_on_the_rolled_back_host_runs_clean_and_changes_nothing(wave):
    check = wave["check"]
    assert check["rc"] == 0, check["output"][-3000:]
    assert "no replication to cut over for globex" in check["output"]
    assert check["state_unchanged"]
    # Nothing started, stopped or switched: no task that would act did act.
    assert check["report"]["stats"][FAILED]["failures"] == 0
    journal = read_journal(str(wave["state"] / FAILED / "journal.jsonl"))
    assert journal[-1]["action"] == "playbook" and journal[-1]["check_mode"] is True
