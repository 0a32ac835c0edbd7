"""playbooks/discover.yml against every lab variant: what it reports equals what the lab built and seeded."""

import ast
import json
import sys

import pytest
import yaml
from conftest import LEGACY_VMS, REPO, STATE_DIR, ansible_adhoc, run_playbook, scalar, vms_of_variant

sys.path.insert(0, str(REPO / ".build" / "collections"))
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit.journal import (  # noqa: E402
    read_journal,
    verify_journal,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.discovery import (  # noqa: E402
    tree_checksum,
)

ADDON_SOURCES = {
    "lab_legacy_traps": REPO / "lab" / "images" / "legacy-vm" / "files" / "lab_legacy_traps",
    "lab_erp_extras": REPO / "lab" / "images" / "legacy-vm-source" / "files" / "lab_erp_extras",
}
SOURCE_VMS = vms_of_variant("source")
PACKAGED_VMS = vms_of_variant("packaged")


def lab_secrets():
    """Every secret the lab and the phases generated, the migration's own under secrets/migration too."""
    return [path.read_text().strip() for path in (STATE_DIR / "secrets").rglob("*") if path.is_file()]


def run_discover(state_dir, *extra):
    """Run the discover playbook like an operator; return (rc, json report)."""
    rc, report, _output = run_playbook("discover.yml", "-e", f"odoo_migration_state_dir={state_dir}", *extra)
    return rc, report


def failures(report):
    """{host: msg} of every failed task."""
    found = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed"):
                    found[host] = result.get("msg", "")
                for item in result.get("results", []):
                    if item.get("failed"):
                        found[host] = item.get("msg", "")
    return found


@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("migration-state")
    rc, report = run_discover(state_dir)
    assert rc == 0, failures(report)
    return state_dir, report


def state(state_dir, host, name):
    return yaml.safe_load((state_dir / host / name).read_text())


def test_discovery_writes_facts_measurements_and_plan_for_every_vm(discovered):
    state_dir, report = discovered
    for host in LEGACY_VMS:
        for name in ("facts.yml", "measurements.yml", "plan.yml"):
            assert (state_dir / host / name).is_file(), f"{host}/{name} missing"
    assert set(report["stats"]) >= set(LEGACY_VMS)


@pytest.mark.parametrize("host", PACKAGED_VMS)
def test_packaged_vm_is_reported_as_the_debian_package_with_the_home_data_dir(discovered, host):
    instance = state(discovered[0], host, "facts.yml")["instance"]
    assert instance["service"]["name"] == "odoo.service"
    assert instance["service"]["user"] == "odoo"
    assert instance["odoo"]["series"] == "19.0"
    install = instance["odoo"]["install"]
    assert install["type"] == "distribution package"
    installed = ansible_adhoc(host, "ansible.builtin.command", "dpkg-query -W -f ${Version} odoo-19")[host]
    assert install["package"] == {"manager": "dpkg", "name": "odoo-19", "version": installed["stdout"]}
    assert instance["config"]["file"] == "/etc/odoo/odoo.conf"
    assert instance["data_dir"]["path"] == LEGACY_VMS[host]["lab_odoo_data_dir"]
    assert instance["data_dir"]["source"].startswith("default (the service user's home /var/lib/odoo")
    assert instance["database_server"]["port"] == LEGACY_VMS[host]["lab_pg_port"]


@pytest.mark.parametrize("host", SOURCE_VMS)
def test_source_vm_is_reported_as_a_git_checkout_in_a_virtualenv(discovered, host):
    instance = state(discovered[0], host, "facts.yml")["instance"]
    assert instance["service"]["name"] == "odoo-erp.service"
    assert instance["service"]["user"] == "erp"
    install = instance["odoo"]["install"]
    assert install["type"] == "source checkout"
    head = ansible_adhoc(
        host, "ansible.builtin.command", "git -c safe.directory=* -C /opt/odoo/src rev-parse HEAD"
    )
    assert install["git"]["commit"] == head[host]["stdout"].strip()
    assert install["git"]["modified_files"] == 0
    assert install["virtualenv"] == "/opt/odoo/venv"
    assert instance["python"]["interpreter"] == "/opt/odoo/venv/bin/python3"
    assert "humanize" in instance["python"]["packages_in_virtualenv"]
    settings = instance["settings"]
    assert settings["workers"] == {"value": 2, "source": "command line"}
    assert settings["data_dir"]["value"] == LEGACY_VMS[host]["lab_odoo_data_dir"]
    assert settings["data_dir"]["source"].startswith("config file /etc/odoo-erp/erp.conf:")
    assert instance["database_server"]["port"] == LEGACY_VMS[host]["lab_pg_port"] == 5433
    assert [(entry["path"], entry["kind"]) for entry in instance["addons_paths"]] == [
        ("/opt/odoo/src/odoo/addons", "core"),
        ("/opt/odoo/src/addons", "core"),
        ("/opt/odoo/custom/addons", "custom"),
    ]


def test_served_databases_are_the_seeded_ones(discovered, legacy_vm):
    host, variables = legacy_vm
    facts = state(discovered[0], host, "facts.yml")
    served = sorted(item["name"] for item in facts["instance"]["databases"] if item["served"])
    assert served == sorted(variables["lab_odoo_databases"])
    assert sorted(facts["postgresql"]) == served
    assert state(discovered[0], host, "plan.yml")["databases"] == sorted(variables["lab_odoo_databases"])


def test_custom_addons_match_the_lab_sources_byte_for_byte(discovered, legacy_vm):
    host, variables = legacy_vm
    addons = {
        item["name"]: item for item in state(discovered[0], host, "facts.yml")["instance"]["custom_addons"]
    }
    assert sorted(addons) == sorted(variables["lab_odoo_custom_addons"])
    for name, addon in addons.items():
        manifest = ast.literal_eval((ADDON_SOURCES[name] / "__manifest__.py").read_text())
        assert addon["version"] == manifest["version"]
        assert addon["depends"] == manifest["depends"]
        assert addon["external_python"] == manifest["external_dependencies"]["python"]
        assert addon["external_python_missing"] == []
        assert addon["checksum"] == tree_checksum(str(ADDON_SOURCES[name]))


def test_installed_modules_and_states_match_the_database(discovered, seeded_databases):
    for host, database, _scale in seeded_databases:
        facts = state(discovered[0], host, "facts.yml")
        reported = next(item for item in facts["instance"]["databases"] if item["name"] == database)
        modules = {item["name"]: item for item in reported["modules"]}
        count = int(scalar(host, database, "SELECT count(*) FROM ir_module_module WHERE state = 'installed'"))
        assert len(modules) == count
        for name in ("contacts", "crm", "sale_management", "purchase", "lab_legacy_traps"):
            assert modules[name]["state"] == "installed"
        assert modules["lab_legacy_traps"]["latest_version"] == "19.0.1.2.0"
        assert reported["parameters"]["database.secret"] == {"present": True}
        uuid = scalar(host, database, "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")
        assert reported["parameters"]["database.uuid"] == uuid


def test_filestore_counts_match_the_disk_and_no_attachment_is_missing(discovered, seeded_databases):
    for host, database, _scale in seeded_databases:
        measured = state(discovered[0], host, "measurements.yml")["instance"]["databases"][database]
        path = f"{LEGACY_VMS[host]['lab_odoo_data_dir']}/filestore/{database}"
        assert measured["filestore"]["path"] == path
        on_disk = ansible_adhoc(
            host,
            "ansible.builtin.shell",
            f"find {path} -path '*/checklist' -prune -o -type f -print | wc -l",
            become=True,
        )
        assert measured["filestore"]["files"] == int(on_disk[host]["stdout"])
        stored = scalar(
            host,
            database,
            "SELECT count(DISTINCT store_fname) FROM ir_attachment WHERE store_fname IS NOT NULL",
        )
        assert measured["attachments"]["distinct_files"] == int(stored)
        assert measured["attachments"]["missing_files"] == 0


def test_nginx_site_is_described_with_its_websocket_route(discovered, legacy_vm):
    host, variables = legacy_vm
    sites = state(discovered[0], host, "facts.yml")["instance"]["nginx"]["sites"]
    routes = [route for site in sites for route in site["odoo_routes"]]
    assert routes and all(route["websocket_locations"] == ["/websocket"] for route in routes)
    if variables["lab_odoo_variant"] == "source":
        assert routes[0]["server_names"] == ["globex.lab.internal", "initech.lab.internal"]
        assert sites[0]["servers"][0]["client_max_body_size"] == "100m"


def test_traps_are_reported_as_concerns(discovered, seeded_databases):
    for host, database, _scale in seeded_databases:
        postgresql = state(discovered[0], host, "facts.yml")["postgresql"][database]
        concerns = {(item["id"], item["subject"]): item for item in postgresql["concerns"]}
        relation = concerns[("replica_identity_index", "public.lab_document_partner_rel")]
        assert relation["severity"] == "warning" and "REPLICA IDENTITY USING INDEX" in relation["fix"]
        assert concerns[("replica_identity_missing", "public.lab_audit_log")]["severity"] == "blocker"
        assert concerns[("wal_level", "source wal_level")]["severity"] == "blocker"
        tables = {f"{item['schema']}.{item['name']}": item for item in postgresql["tables"]}
        assert tables["public.lab_audit_log"]["replica_identity"] == "none"
        assert tables["public.res_partner"]["replica_identity"] == "primary_key"
        sequences = {item["name"]: item for item in postgresql["sequences"]}
        assert sequences["ir_sequence_001"]["owned_by"] is None
        assert sequences["res_partner_id_seq"]["owned_by"] == "public.res_partner.id"


def test_wave_report_names_every_host_and_the_blockers(discovered):
    report = (discovered[0] / "reports" / "discover-wave1.md").read_text()
    for host in LEGACY_VMS:
        assert f"## {host}" in report
    assert "Wave status: BLOCKED" in report
    assert "`replica_identity_missing`" in report and "`wal_level`" in report


def test_no_secret_reaches_the_state(discovered):
    secrets = lab_secrets()
    assert len(secrets) >= 3
    for path in discovered[0].rglob("*"):
        if path.is_file():
            text = path.read_text()
            for secret in secrets:
                assert secret not in text, f"a lab secret is in {path}"
    facts = state(discovered[0], PACKAGED_VMS[0], "facts.yml")
    assert facts["instance"]["secrets"]["admin_passwd"]["present"] is True
    assert facts["instance"]["settings"]["admin_passwd"]["value"] == "<set>"


def test_second_run_changes_nothing_and_keeps_operator_edits(discovered):
    state_dir, _report = discovered
    plan_path = state_dir / PACKAGED_VMS[0] / "plan.yml"
    edited = plan_path.read_text().replace("tenancy: dedicated", "tenancy: shared  # approved by ops")
    plan_path.write_text(edited)
    rc, report = run_discover(state_dir)
    assert rc == 0, failures(report)
    assert {host: stats["changed"] for host, stats in report["stats"].items()} == dict.fromkeys(
        report["stats"], 0
    )
    assert plan_path.read_text() == edited


def test_journal_records_every_task_with_who_when_and_result(discovered):
    state_dir, _report = discovered
    secrets = lab_secrets()
    for host in LEGACY_VMS:
        path = state_dir / host / "journal.jsonl"
        assert verify_journal(str(path)) == []
        records = read_journal(str(path))
        tasks = [record for record in records if record["action"] == "task"]
        assert {"operator", "ts", "playbook", "play", "task", "module", "result", "duration_s"} <= set(
            tasks[-1]
        )
        described = [
            record for record in tasks if record["task"].endswith("Describe the Odoo instance on the VM")
        ]
        assert described and described[-1]["result"] == "ok"
        assert described[-1]["module"] == "sysgenpro.odoo_migration.odoo_instance_info"
        assert records[-1]["action"] == "playbook" and records[-1]["result"] == "ok"
        text = path.read_text()
        assert not any(secret in text for secret in secrets)


def test_no_odoo_found_fails_naming_the_search_and_writes_nothing(tmp_path):
    rc, report = run_discover(tmp_path, "-e", "odoo_migration_service=no-such-odoo.service")
    assert rc != 0
    messages = failures(report)
    assert set(messages) == set(LEGACY_VMS)
    for message in messages.values():
        assert "no Odoo found" in message and "systemd service units" in message and "no-such-odoo" in message
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_unreachable_database_fails_naming_the_endpoint_never_the_password(tmp_path):
    wrong = "wrong-password-7f3a9"
    host = PACKAGED_VMS[0]
    rc, report = run_discover(tmp_path, "--limit", host, "-e", f"odoo_migration_source_pg_password={wrong}")
    assert rc != 0
    message = failures(report)[host]
    assert "127.0.0.1" in message and str(LEGACY_VMS[host]["lab_pg_host_port"]) in message
    assert "odoo_migration" in message
    assert wrong not in json.dumps(report)
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_unreadable_config_fails_with_the_fix_and_writes_nothing():
    host = PACKAGED_VMS[0]
    result = ansible_adhoc(host, "sysgenpro.odoo_migration.odoo_instance_info", "python_packages=false")[host]
    assert result.get("failed")
    assert "cannot read Odoo's config file /etc/odoo/odoo.conf" in result["msg"]
    assert "become: true" in result["msg"]


def test_check_mode_reports_the_writes_it_would_make_and_makes_none(tmp_path):
    state_dir = tmp_path / "state"
    rc, report = run_discover(state_dir, "--check")
    assert rc == 0, failures(report)
    assert all(report["stats"][host]["changed"] > 0 for host in LEGACY_VMS)
    assert not state_dir.exists()
