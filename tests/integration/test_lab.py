"""The lab's legacy VMs are reachable, serve Odoo through nginx, and hold the seeded estate."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
from conftest import REPO, STATE_DIR, ansible_adhoc, psql, scalar
from seed_plan import seed_plan

FILESTORE_ROOT = "/var/lib/odoo/.local/share/Odoo/filestore"


def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def test_ansible_logs_in_over_ssh_and_becomes_root(legacy_vm):
    host, _ = legacy_vm
    as_admin = ansible_adhoc(host, "ansible.builtin.command", "id -un")[host]
    as_root = ansible_adhoc(host, "ansible.builtin.command", "id -u", become=True)[host]
    assert as_admin["stdout"] == "labadmin"
    assert as_root["stdout"] == "0"


def test_vm_runs_the_packaged_odoo_service_under_systemd(legacy_vm):
    host, _ = legacy_vm
    result = ansible_adhoc(
        host, "ansible.builtin.command", "systemctl is-active odoo postgresql@17-main nginx ssh"
    )[host]
    assert result["stdout_lines"] == ["active"] * 4
    version = ansible_adhoc(host, "ansible.builtin.command", "dpkg-query -W -f=${Version} odoo-19")[host]
    assert version["stdout"].startswith("19.0")


def test_web_health_passes_through_nginx(legacy_vm):
    _, variables = legacy_vm
    status, headers, body = http_get(variables["lab_http_port"], "/web/health")
    assert status == 200
    assert headers["Server"].startswith("nginx")
    assert json.loads(body)["status"] == "pass"


def test_websocket_route_reaches_the_gevent_worker(legacy_vm):
    _, variables = legacy_vm
    status, _, body = http_get(variables["lab_http_port"], "/websocket/health")
    assert status == 200
    assert json.loads(body)["status"] == "pass"


def test_seeded_row_counts_match_the_seed_plan(seeded_databases):
    for host, database, scale_mb in seeded_databases:
        plan = seed_plan(scale_mb)
        counts = psql(
            host,
            database,
            """
            SELECT (SELECT count(*) FROM res_partner WHERE name LIKE 'Customer %'),
                   (SELECT count(*) FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
                     WHERE t.name->>'en_US' LIKE 'Item %'),
                   (SELECT count(*) FROM sale_order),
                   (SELECT count(*) FROM sale_order WHERE state = 'sale'),
                   (SELECT count(*) FROM sale_order_line),
                   (SELECT count(*) FROM purchase_order),
                   (SELECT count(*) FROM lab_document),
                   (SELECT count(*) FROM lab_document_partner_rel),
                   (SELECT count(*) FROM mail_message WHERE body::text LIKE '%Call note%'),
                   (SELECT count(*) FROM ir_attachment WHERE name LIKE 'scan-%'),
                   (SELECT count(*) FROM lab_audit_log WHERE source = 'legacy-import')
        """,
        )[0]
        expected = [
            plan["partners"],
            plan["products"],
            plan["sale_orders"],
            plan["confirmed_sale_orders"],
            plan["sale_orders"] * plan["sale_order_lines_per_order"],
            plan["purchase_orders"],
            plan["documents"],
            plan["document_partner_links"],
            plan["messages"],
            plan["attachments"],
            plan["audit_log_rows"],
        ]
        assert [int(value) for value in counts] == expected, f"{host}/{database}"


def test_relation_table_has_a_unique_index_but_no_primary_key(seeded_databases):
    for host, database, _ in seeded_databases:
        indexes = psql(
            host,
            database,
            """
            SELECT indisprimary, indisunique FROM pg_index
             WHERE indrelid = 'lab_document_partner_rel'::regclass
        """,
        )
        assert ["t", "t"] not in indexes and ["t", "f"] not in indexes, "no primary key expected"
        assert ["f", "t"] in indexes, "a unique index is the only replica identity candidate"


def test_audit_log_table_has_neither_key_nor_unique_index(seeded_databases):
    for host, database, _ in seeded_databases:
        unique = scalar(
            host,
            database,
            """
            SELECT count(*) FROM pg_index
             WHERE indrelid = 'lab_audit_log'::regclass AND (indisprimary OR indisunique)
        """,
        )
        assert unique == "0"


def test_documents_are_numbered_by_a_standalone_sequence(seeded_databases):
    for host, database, scale_mb in seeded_databases:
        sequence_id, implementation = psql(
            host, database, "SELECT id, implementation FROM ir_sequence WHERE code = 'lab.document'"
        )[0]
        assert implementation == "standard"
        sequence_name = f"ir_sequence_{int(sequence_id):03d}"
        owned_by = scalar(
            host,
            database,
            f"""
            SELECT count(*) FROM pg_depend
             WHERE objid = '{sequence_name}'::regclass AND deptype = 'a'
        """,
        )
        assert owned_by == "0", "the sequence must not be owned by a column"
        last_value = scalar(host, database, f"SELECT last_value FROM {sequence_name}")
        documents = int(scalar(host, database, "SELECT count(*) FROM lab_document"))
        assert int(last_value) == documents >= seed_plan(scale_mb)["documents"]
        names = scalar(host, database, "SELECT max(name) FROM lab_document")
        assert re.fullmatch(r"DOC/\d{4}/\d{6}", names)


def test_source_postgresql_is_17_without_logical_wal(seeded_databases):
    for host, database, _ in seeded_databases:
        assert scalar(host, database, "SHOW server_version_num").startswith("17")
        assert scalar(host, database, "SHOW wal_level") == "replica"


def test_every_attachment_is_in_the_filestore_with_its_sha1_as_name(seeded_databases):
    for host, database, _ in seeded_databases:
        stored = {
            row[0]
            for row in psql(
                host, database, "SELECT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
            )
        }
        assert len(stored) > 0
        result = ansible_adhoc(
            host,
            "ansible.builtin.script",
            f"{REPO}/tests/integration/files/filestore_digest.py {FILESTORE_ROOT}/{database} "
            "executable=python3",
            become=True,
        )[host]
        assert result.get("rc") == 0, result.get("stderr") or result.get("msg")
        on_disk = json.loads(result["stdout"])
        missing = sorted(stored - set(on_disk))
        assert missing == []
        corrupt = [name for name in stored if on_disk[name] != os.path.basename(name)]
        assert corrupt == []


def test_cron_writes_to_the_audit_log_every_minute(seeded_databases):
    for host, database, _ in seeded_databases:
        interval = psql(
            host,
            database,
            """
            SELECT c.active, c.interval_number, c.interval_type FROM ir_cron c
              JOIN ir_model_data d ON d.model = 'ir.cron' AND d.res_id = c.id
             WHERE d.module = 'lab_legacy_traps' AND d.name = 'cron_lab_audit_tick'
        """,
        )
        assert interval == [["t", "1", "minutes"]]
        before = int(scalar(host, database, "SELECT count(*) FROM lab_audit_log WHERE source = 'cron'"))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            now = int(scalar(host, database, "SELECT count(*) FROM lab_audit_log WHERE source = 'cron'"))
            if now > before:
                break
            time.sleep(10)
        assert now > before, f"no cron row in {database} on {host} within 3 minutes"


def test_target_postgresql_18_takes_the_generated_secret():
    password = (STATE_DIR / "secrets" / "target-postgres-password").read_text().strip()
    assert oct((STATE_DIR / "secrets" / "target-postgres-password").stat().st_mode & 0o777) == "0o600"
    with psycopg.connect(
        host="127.0.0.1", port=5418, user="postgres", password=password, dbname="postgres", connect_timeout=10
    ) as connection:
        version = connection.execute("SHOW server_version_num").fetchone()[0]
        wal_level = connection.execute("SHOW wal_level").fetchone()[0]
    assert version.startswith("18")
    assert wal_level == "logical"
    inspected = subprocess.run(
        ["docker", "inspect", "odoo-mig-target-pg"], capture_output=True, text=True, check=True
    ).stdout
    assert password not in inspected, "the password must not be in the container's configuration"


def test_registry_answers_on_loopback():
    status, _, _ = http_get(5000, "/v2/")
    assert status == 200


def test_second_lab_up_changes_nothing():
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "inventories/lab",
            "lab/playbooks/up.yml",
            "-e",
            f"lab_legacy_seed_scale_mb={os.environ.get('LAB_SCALE_MB', '30')}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    assert run.returncode == 0, run.stdout[-3000:]
    recap = re.findall(
        r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", run.stdout, re.MULTILINE
    )
    assert {host for host, *_ in recap} >= {"lab-docker-host", "legacy-vm-1", "legacy-vm-2"}
    assert all(counts == ["0", "0", "0"] for _, *counts in recap), run.stdout[-3000:]
