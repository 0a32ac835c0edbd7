"""A rehearsal of wave1 on the lab: every gate and the window's reads timed, nothing changed.

discover, containerize and replicate run for wave1 (the state an operator rehearses from); then
playbooks/rehearse.yml, wave.yml with wave_rehearse=true, and wave.yml --check. Before and after,
the test reads what a cutover would change: the roles, slots, publications, subscriptions and helper
rows on every VM's PostgreSQL and on the target, the VMs' nginx sites and Odoo services, and the
containers on the Docker host. They must be the same, and each host's rehearsal.yml and the wave
report must carry a predicted write unavailability per database. Teardown finalizes and clears the
wave.
"""

import subprocess
import time

import psycopg
import pytest
import yaml
from conftest import LEGACY_VMS, ODOO_SERVICES, ansible_adhoc, lab_secret, lab_target, run_playbook

pytestmark = pytest.mark.lab

DATABASES = {"legacy-vm-1": ["acme"], "legacy-vm-2": ["globex", "initech"]}
CATALOG_SQL = """
SELECT
  (SELECT string_agg(rolname || ':' || rolcanlogin || ':' || coalesce(array_to_string(rolconfig, ','), ''),
                     ' ' ORDER BY rolname) FROM pg_roles),
  (SELECT string_agg(slot_name, ' ' ORDER BY slot_name) FROM pg_replication_slots),
  (SELECT string_agg(pubname, ' ' ORDER BY pubname) FROM pg_publication),
  (SELECT string_agg(subname || ':' || subenabled, ' ' ORDER BY subname) FROM pg_subscription),
  (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables
    WHERE schemaname = 'odoo_migration'),
  (SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'odoo_migration_fence%')
"""


def _source(host, dbname):
    return dict(
        host="127.0.0.1",
        port=LEGACY_VMS[host]["lab_pg_host_port"],
        user="odoo_migration",
        password=lab_secret(f"{host}-source-postgres-password")[0],
        dbname=dbname,
    )


def _catalog(endpoint):
    with psycopg.connect(**endpoint, autocommit=True) as conn:
        return conn.execute(CATALOG_SQL).fetchone()


def _what_a_cutover_would_change():
    state = {}
    for host, databases in DATABASES.items():
        for database in databases:
            state[f"{host}/{database} on the VM"] = _catalog(_source(host, database))
            state[f"{host}/{database} on the target"] = _catalog(lab_target(database))
    sites = ansible_adhoc("wave1", "ansible.builtin.shell", "md5sum /etc/nginx/sites-enabled/*", become=True)
    for host in DATABASES:
        service = ODOO_SERVICES[LEGACY_VMS[host]["lab_odoo_variant"]]
        active = ansible_adhoc(
            host, "ansible.builtin.shell", f"systemctl is-active {service} || true", become=True
        )
        state[f"{host} nginx sites"] = sites[host]["stdout"]
        state[f"{host} Odoo service"] = active[host]["stdout"]
    containers = subprocess.run(
        ["docker", "ps", "-a", "--filter", "name=odoo-legacy", "--format", "{{.Names}} {{.State}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    state["containers"] = sorted(containers.stdout.split("\n"))
    return state


def _state_files(state):
    """Every state and secret file (but the audit journals, where a check run is recorded) and its bytes."""
    return dict(
        (str(path.relative_to(state)), path.read_bytes())
        for path in sorted(state.rglob("*"))
        if path.is_file() and path.name != "journal.jsonl"
    )


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory):
    state = tmp_path_factory.mktemp("rehearsal-state")
    options = ("-e", "wave=wave1", "-e", f"odoo_migration_state_dir={state}")
    try:
        for phase in ("discover.yml", "containerize.yml", "replicate.yml"):
            rc, _report, output = run_playbook(phase, *options, "-e", "odoo_migration_allow_restart=true")
            assert rc == 0, f"{phase}: {output[-3000:]}"
        # containerize again, nothing changed since: the images are neither rebuilt nor scanned again.
        rc, again, output = run_playbook("containerize.yml", *options)
        assert rc == 0, f"containerize.yml again: {output[-3000:]}"
        # replicate again: the sources now hold the migration's helper schema, owned by the migration
        # login, which is no role of either instance (both VMs have one of that name on the shared target).
        rc, _report, output = run_playbook("replicate.yml", *options)
        assert rc == 0, f"replicate.yml again: {output[-3000:]}"
        with psycopg.connect(**lab_target("postgres")) as conn:
            claimed_roles = [
                row[0]
                for row in conn.execute("SELECT name FROM odoo_migration.tenant_claim WHERE kind = 'role'")
            ]
        # Statistics reach pg_stat_user_tables within a second of a commit.
        time.sleep(2)
        before = _what_a_cutover_would_change()
        started = time.monotonic()
        rc, _report, output = run_playbook("rehearse.yml", *options)
        seconds = time.monotonic() - started
        wave_rc, _report, wave_output = run_playbook("wave.yml", *options, "-e", "wave_rehearse=true")
        # The wave in check mode on hosts that are replicated and not moved: it plans the whole move.
        files_before = _state_files(state)
        check_rc, check_report, check_output = run_playbook(
            "wave.yml", *options, "--check", "-e", "odoo_migration_allow_restart=true"
        )
        files_after = _state_files(state)
        time.sleep(2)
        after = _what_a_cutover_would_change()
        print(f"rehearse.yml: rc={rc} in {seconds:.1f} s")
        yield dict(
            state=state,
            rc=rc,
            output=output,
            wave_rc=wave_rc,
            wave_output=wave_output,
            before=before,
            after=after,
            check=dict(rc=check_rc, report=check_report, output=check_output),
            containerize_again=again,
            claimed_roles=claimed_roles,
            files=(files_before, files_after),
        )
    finally:
        final_rc, _report, final_output = run_playbook("finalize.yml", *options, timeout=600)
        clear_rc, _report, clear_output = run_playbook("lab/playbooks/clear_wave.yml", timeout=300)
        assert final_rc == 0, final_output[-3000:]
        assert clear_rc == 0, clear_output[-3000:]


def test_the_rehearsal_and_the_wave_switch_run_clean(rehearsed):
    assert rehearsed["rc"] == 0, rehearsed["output"][-3000:]
    assert rehearsed["wave_rc"] == 0, rehearsed["wave_output"][-3000:]


def test_the_rehearsal_changed_nothing_on_the_vms_the_target_or_the_proxy(rehearsed):
    changed = dict(
        (name, (rehearsed["before"][name], rehearsed["after"][name]))
        for name in rehearsed["before"]
        if rehearsed["before"][name] != rehearsed["after"][name]
    )
    assert changed == {}
    # The instances still replicate and still serve from their VMs.
    for host, databases in DATABASES.items():
        assert rehearsed["after"][f"{host} Odoo service"].strip() == "active"
        for database in databases:
            assert "odoo_migration:true" in rehearsed["after"][f"{host}/{database} on the target"][3]


def test_each_database_has_a_predicted_write_unavailability(rehearsed):
    for host, databases in DATABASES.items():
        record = yaml.safe_load((rehearsed["state"] / host / "rehearsal.yml").read_text())
        assert sorted(record["databases"]) == databases
        for database in databases:
            rehearsal = record["databases"][database]
            timed = [step["step"] for step in rehearsal["steps"]]
            assert timed == ["fence", "marker", "drain", "large_objects", "sequences", "snapshots"]
            assert 0 < rehearsal["predicted_write_unavailable_seconds"] < 30
            # What Odoo wrote on the VM since containerize seeded the volume (the final delta).
            assert record["filestore"][database]["sent_files"] >= 0
    report = (rehearsed["state"] / "reports" / "wave-wave1.md").read_text()
    assert "predicted writes unavailable (s)" in report
    assert report.count("not cut over yet") == sum(len(databases) for databases in DATABASES.values())


def test_the_wave_in_check_mode_plans_the_move_and_changes_nothing(rehearsed):
    """--check on replicated hosts walks every phase of the move: no failure, no rescue, no file written
    (not even a generated secret), and (with the rehearsal) nothing changed on the VMs, target or proxy."""
    check = rehearsed["check"]
    assert check["rc"] == 0, check["output"][-3000:]
    for host in DATABASES:
        stats = check["report"]["stats"][host]
        assert (stats["failures"], stats["rescued"]) == (0, 0), stats
    assert "check mode: no replication" not in check["output"]
    before, after = rehearsed["files"]
    assert sorted(set(after) - set(before)) == [] and after == before


def test_an_unchanged_image_is_neither_rebuilt_nor_scanned_again(rehearsed):
    builds = dict(
        (host, result)
        for play in rehearsed["containerize_again"]["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith("Build, scan and push the instance's image")
        for host, result in task["hosts"].items()
    )
    assert sorted(builds) == sorted(DATABASES)
    for host, build in builds.items():
        assert build["built"] is False and build["secret_scan"]["reused"] is True, host
        assert build["secret_scan"]["findings"] == [] and build["changed"] is False, host


def test_a_second_replicate_claims_no_migration_login(rehearsed):
    assert rehearsed["claimed_roles"] and "odoo_migration" not in rehearsed["claimed_roles"]
