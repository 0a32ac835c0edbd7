"""baseline_monitoring on the lab's wave: Debian's exporters on each VM, the Odoo probes through the lab's
blackbox exporter, the alert rules in the lab's Prometheus, alerts in its Alertmanager.

Every target is up; stopping Odoo fires its health alert and starting it clears it; a migration slot held back
fires the WAL-retained alert. A second run and check mode change nothing; no secret reaches the output.
"""

import json
import time
import urllib.parse
import urllib.request

import psycopg
import pytest
from backup_lab import HOST as PACKAGED_VM
from backup_lab import put_the_vm_back
from conftest import (
    LEGACY_VMS,
    ODOO_SERVICES,
    STATE_DIR,
    ansible_adhoc,
    changed_count,
    lab_target,
    psql,
    run_playbook,
    wave_playbook,
)

PROMETHEUS = "http://127.0.0.1:9090"
ALERTMANAGER = "http://127.0.0.1:9093"
EXPORTER_PORTS = {"node": 9100, "postgres": 9187}
MONITOR = "odoo-migration-monitor"


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def prometheus_query(query):
    return get_json(f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": query}))["data"][
        "result"
    ]


def targets_of(host):
    return [
        target
        for target in get_json(f"{PROMETHEUS}/api/v1/targets")["data"]["activeTargets"]
        if target["labels"].get("instance_of") == host
    ]


def alertmanager_alerts(name, host):
    return [
        alert
        for alert in get_json(f"{ALERTMANAGER}/api/v2/alerts?active=true")
        if alert["labels"]["alertname"] == name and alert["labels"].get("instance_of") == host
    ]


def wait_for(what, probe, timeout=120, every=2):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"after {timeout} s: {what}"
        time.sleep(every)


def monitoring_playbook(state, *extra, name="monitoring.yml"):
    return wave_playbook(name, state, *extra)


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    state = tmp_path_factory.mktemp("monitoring-state")
    rc, _report, output = monitoring_playbook(state, name="discover.yml")
    assert rc == 0, output[-3000:]
    rc, report, output = monitoring_playbook(state)
    assert rc == 0, output[-3000:]
    return dict(state=state, report=report, output=output)


def monitoring_password(host):
    return (STATE_DIR / "secrets" / "migration" / host / "odoo-monitoring-password").read_text().strip()


def test_prometheus_reports_every_target_of_the_wave_up(watched):
    jobs = {"node", "postgres", "odoo_health", "odoo_login"}
    for host in LEGACY_VMS:

        def all_up(host=host):
            targets = targets_of(host)
            up = all(target["health"] == "up" for target in targets)
            return up and {target["labels"]["job"] for target in targets} >= jobs

        wait_for(f"every target of {host} up: {targets_of(host)}", all_up)
    databases = {db for variables in LEGACY_VMS.values() for db in variables["lab_odoo_databases"]}
    expected = {(db, probe) for db in databases for probe in ("odoo_health", "odoo_login")}

    def succeeding():
        probes = prometheus_query('probe_success{probe=~"odoo_.*"}')
        return {(r["metric"]["database"], r["metric"]["probe"]) for r in probes if r["value"][1] == "1"}

    # The login probes run every 30 s: each has its first answer within a minute or so.
    wait_for(f"every probe succeeding: {expected - succeeding()} not yet", lambda: succeeding() == expected)
    # The TLS VM's certificate is watched.
    assert prometheus_query("probe_ssl_earliest_cert_expiry - time() > 14 * 86400")
    pg_up = prometheus_query('pg_up{serving="vm"}')
    assert {r["metric"]["instance_of"] for r in pg_up if r["value"][1] == "1"} == set(LEGACY_VMS)


def test_exporters_listen_only_on_the_address_prometheus_scrapes(watched):
    for host in LEGACY_VMS:
        scraped = {t["labels"]["job"]: t["labels"]["instance"] for t in targets_of(host)}
        listening = ansible_adhoc(host, "ansible.builtin.command", "ss -Hltn", become=True)[host]["stdout"]
        for job, port in EXPORTER_PORTS.items():
            addresses = [
                line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")
            ]
            assert addresses == [scraped[job]], f"{host}: {job} exporter listens on {addresses}"


def test_the_exporter_role_has_pg_monitor_and_nothing_else(watched):
    for host in LEGACY_VMS:
        (row,) = psql(
            host,
            "postgres",
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolpassword IS NULL,"
            " (SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " WHERE m.member = a.oid) FROM pg_authid a WHERE rolname = 'prometheus'",
        )
        assert row == ["f", "f", "f", "f", "t", "pg_monitor"]


def test_the_monitoring_user_logs_in_and_reads_nothing(watched):
    host = "legacy-vm-2"
    password = monitoring_password(host)
    port = LEGACY_VMS[host]["lab_http_port"]

    def call(service, method, *args):
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"service": service, "method": method, "args": args},
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/jsonrpc",
            data=body,
            headers={"Content-Type": "application/json", "Host": "globex.lab.internal"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    uid = call("common", "login", "globex", MONITOR, password)["result"]
    assert uid
    refused = call(
        "object", "execute_kw", "globex", uid, password, "res.partner", "search_read", [[]], {"limit": 1}
    )
    assert "error" in refused and "AccessError" in json.dumps(refused["error"])


def test_no_secret_reaches_the_output_or_the_state(watched):
    for host in LEGACY_VMS:
        password = monitoring_password(host)
        assert password not in watched["output"]
        assert password not in (watched["state"] / host / "monitoring.yml").read_text()


def test_a_second_run_and_check_mode_change_nothing(watched):
    rc, report, output = monitoring_playbook(watched["state"])
    assert rc == 0, output[-3000:]
    assert changed_count(report) == 0, output[-3000:]
    rc, report, output = monitoring_playbook(watched["state"], "--check")
    assert rc == 0, output[-3000:]
    assert changed_count(report) == 0, output[-3000:]


def test_stopping_odoo_fires_its_health_alert_and_starting_it_clears_it(watched):
    host = "legacy-vm-2"
    service = ODOO_SERVICES[LEGACY_VMS[host]["lab_odoo_variant"]]
    stopped = time.monotonic()
    ansible_adhoc(host, "ansible.builtin.systemd_service", f"name={service} state=stopped", become=True)
    try:
        fired = wait_for(
            f"OdooHealthFailing for {host} in Alertmanager",
            lambda: alertmanager_alerts("OdooHealthFailing", host),
        )
        print(f"OdooHealthFailing reached Alertmanager {time.monotonic() - stopped:.0f} s after the stop")
        assert {alert["labels"]["database"] for alert in fired} == set(LEGACY_VMS[host]["lab_odoo_databases"])
        assert all(alert["labels"]["serving"] == "vm" for alert in fired)
    finally:
        ansible_adhoc(host, "ansible.builtin.systemd_service", f"name={service} state=started", become=True)
    wait_for(
        f"OdooHealthFailing for {host} cleared",
        lambda: not alertmanager_alerts("OdooHealthFailing", host),
        timeout=180,
    )


TABLE_REPLICA_IDENTITIES = (
    "SELECT c.oid::regclass::text, c.relreplident FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'"
)


def put_replica_identities_back(host, database, before):
    clauses = {"d": "DEFAULT", "f": "FULL", "n": "NOTHING"}
    for name, identity in psql(host, database, TABLE_REPLICA_IDENTITIES):
        if name in before and before[name] != identity:
            psql(host, database, f"ALTER TABLE {name} REPLICA IDENTITY {clauses[before[name]]}")


def test_a_migration_slot_held_back_fires_the_wal_retained_alert(watched):
    host = PACKAGED_VM
    (database,) = LEGACY_VMS[host]["lab_odoo_databases"]
    options = ("-e", "wave=wave1", "-e", f"odoo_migration_state_dir={watched['state']}", "--limit", host)
    identities_before = dict(psql(host, database, TABLE_REPLICA_IDENTITIES))
    try:
        rc, _report, output = run_playbook(
            "replicate.yml", *options, "-e", "odoo_migration_allow_restart=true"
        )
        assert rc == 0, output[-3000:]
        # The tier allows the migration's slots 1 MiB of WAL here.
        rc, _report, output = monitoring_playbook(
            watched["state"], "--limit", host, "-e", "odoo_migration_max_slot_retained_mb=1"
        )
        assert rc == 0, output[-3000:]
        (slot,) = psql(
            host,
            database,
            "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'odoo_migration%'",
        )[0]
        with psycopg.connect(**lab_target("postgres")) as catalog:
            subscription, target_database = catalog.execute(
                "SELECT s.subname, d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid"
                " WHERE s.subslotname = %s",
                (slot,),
            ).fetchone()
        with psycopg.connect(**lab_target(target_database), autocommit=True) as target:
            target.execute(f'ALTER SUBSCRIPTION "{subscription}" DISABLE')
        # Writes go on on the VM while nothing takes them off the slot.
        for _ in range(4):
            psql(host, database, "CREATE TEMP TABLE IF NOT EXISTS t(); SELECT pg_switch_wal()")
            psql(host, database, "UPDATE res_company SET write_date = now(); SELECT pg_switch_wal()")
        fired = wait_for(
            f"ReplicationSlotRetainsWAL for {host} in Alertmanager",
            lambda: alertmanager_alerts("ReplicationSlotRetainsWAL", host),
        )
        assert all(alert["labels"]["slot_name"].startswith("odoo_migration") for alert in fired)
    finally:
        finalize_rc, _report, finalize_output = run_playbook("finalize.yml", *options, timeout=600)
        clear_rc, _report, clear_output = run_playbook("lab/playbooks/clear_wave.yml", timeout=300)
        # replicate.yml raised wal_level and fixed the traps' replica identities: the VM is a legacy VM
        # again for the tests that follow (test_discover reports those traps).
        put_the_vm_back()
        put_replica_identities_back(host, database, identities_before)
        rc, _report, output = monitoring_playbook(watched["state"], "--limit", host)
        assert finalize_rc == 0, finalize_output[-3000:]
        assert clear_rc == 0, clear_output[-3000:]
        assert rc == 0, output[-3000:]
