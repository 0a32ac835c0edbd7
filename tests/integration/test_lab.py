"""The lab's legacy VMs are reachable, serve Odoo through nginx, and hold the seeded estate."""

import configparser
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from conftest import (
    LEGACY_VMS,
    ODOO_SERVICES,
    REPO,
    STATE_DIR,
    ansible_adhoc,
    lab_secret,
    psql,
    scalar,
    vms_of_variant,
)
from seed_plan import seed_plan

SOURCE_VMS = vms_of_variant("source")
TLS_VMS = sorted(host for host, variables in LEGACY_VMS.items() if "lab_https_port" in variables)
LAB_CA = STATE_DIR / "tls" / "lab-ca.crt"
PACKAGED_VMS = vms_of_variant("packaged")
SOURCE_ODOO_COMMAND = [
    "/opt/odoo/venv/bin/python3",
    "/opt/odoo/src/odoo-bin",
    "-c",
    "/etc/odoo-erp/erp.conf",
    "--workers=2",
    "--logfile=/var/log/odoo-erp/odoo.log",
]


def http_get(port, path, headers=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def json_rpc(port, service, method, *args):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/jsonrpc",
        data=json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"service": service, "method": method, "args": args},
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert "error" not in answer, answer.get("error")
    return answer["result"]


def command(host, args, **become):
    result = ansible_adhoc(host, "ansible.builtin.command", args, **become)[host]
    assert result.get("rc") == 0, f"{args} on {host}: {result.get('stderr') or result.get('msg')}"
    return result["stdout"]


def shell(host, args, **become):
    result = ansible_adhoc(host, "ansible.builtin.shell", args, **become)[host]
    assert result.get("rc") == 0, f"{args} on {host}: {result.get('stderr') or result.get('msg')}"
    return result["stdout"]


def test_lab_has_a_packaged_and_a_source_install_vm():
    assert PACKAGED_VMS and SOURCE_VMS
    assert {variables["lab_odoo_variant"] for variables in LEGACY_VMS.values()} <= set(ODOO_SERVICES)


def test_ansible_logs_in_over_ssh_and_becomes_root(legacy_vm):
    host, _ = legacy_vm
    as_admin = ansible_adhoc(host, "ansible.builtin.command", "id -un")[host]
    as_root = ansible_adhoc(host, "ansible.builtin.command", "id -u", become=True)[host]
    assert as_admin["stdout"] == "labadmin"
    assert as_root["stdout"] == "0"


def test_vm_runs_its_odoo_service_under_systemd(legacy_vm):
    host, variables = legacy_vm
    service = ODOO_SERVICES[variables["lab_odoo_variant"]]
    result = ansible_adhoc(
        host, "ansible.builtin.command", f"systemctl is-active {service} postgresql@17-main nginx ssh"
    )[host]
    assert result["stdout_lines"] == ["active"] * 4


@pytest.mark.parametrize("host", PACKAGED_VMS)
def test_packaged_vm_runs_debian_odoo_19_package(host):
    assert command(host, "dpkg-query -W -f=${Version} odoo-19").startswith("19.0")
    properties = command(host, "systemctl show odoo -p User -p ExecStart")
    assert "User=odoo" in properties
    assert "path=/usr/bin/odoo" in properties


@pytest.mark.parametrize("host", SOURCE_VMS)
def test_source_vm_runs_odoo_from_the_venv_with_the_command_line_workers(host):
    config = configparser.ConfigParser(inline_comment_prefixes=None)
    config.read_string(command(host, "cat /etc/odoo-erp/erp.conf", become=True))
    assert config["options"]["workers"] == "1", "the file must disagree with the command line"
    assert config["options"]["data_dir"] == LEGACY_VMS[host]["lab_odoo_data_dir"]
    assert config["options"]["db_port"] == str(LEGACY_VMS[host]["lab_pg_port"])
    deadline = time.monotonic() + 60
    while True:
        processes = json.loads(
            ansible_adhoc(
                host,
                "ansible.builtin.script",
                f"{REPO}/tests/integration/files/unit_processes.py odoo-erp executable=python3",
                become=True,
            )[host]["stdout"]
        )
        main, children = processes["main"], processes["children"]
        workers = [child for child in children if "gevent" not in child["cmdline"]]
        gevent = [child for child in children if "gevent" in child["cmdline"]]
        # prefork: 2 HTTP workers (the command line's --workers=2, not the file's 1) and
        # one cron worker (max_cron_threads = 1), plus the gevent process for websockets.
        if (len(workers), len(gevent)) == (3, 1) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert main["user"] == "erp"
    assert main["cmdline"] == SOURCE_ODOO_COMMAND
    unit = command(host, "systemctl show odoo-erp -p User -p WorkingDirectory").splitlines()
    assert sorted(unit) == ["User=erp", "WorkingDirectory=/opt/odoo"]
    assert len(workers) == 3, children
    assert len(gevent) == 1, children
    venv = command(host, "cat /opt/odoo/venv/pyvenv.cfg")
    assert "include-system-site-packages = true" in venv


@pytest.mark.parametrize("host", SOURCE_VMS)
def test_source_vm_takes_humanize_from_the_venv_only(host):
    where = command(host, "/opt/odoo/venv/bin/python3 -c 'import humanize; print(humanize.__file__)'")
    assert where.startswith("/opt/odoo/venv/lib/python3")
    version = command(host, "/opt/odoo/venv/bin/python3 -m pip show --disable-pip-version-check humanize")
    assert "Version: 4.12.3" in version
    system = ansible_adhoc(host, "ansible.builtin.command", "/usr/bin/python3 -c 'import humanize'")[host]
    assert system.get("rc") != 0, "humanize must not be installed system-wide"


@pytest.mark.parametrize("host", SOURCE_VMS)
def test_source_vm_has_no_odoo_package_and_no_odoo_service(host):
    installed = shell(
        host,
        "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' '*odoo*' 2>/dev/null"
        " | awk 'substr($1, 2, 1) != \"n\"'; true",
    )
    assert installed == ""
    units = shell(host, "systemctl list-unit-files --no-legend 'odoo.service'; true")
    assert units == ""
    leftovers = shell(
        host, "ls -d /usr/lib/python3/dist-packages/odoo /etc/odoo /usr/bin/odoo 2>/dev/null; true"
    )
    assert leftovers == ""


@pytest.mark.parametrize("host", SOURCE_VMS)
def test_source_tree_is_one_git_commit_in_upstream_layout(host):
    head = command(host, "git -C /opt/odoo/src log --format=%H%x20%s", become_user="erp").splitlines()
    assert len(head) == 1 and re.fullmatch(r"[0-9a-f]{40} .+", head[0])
    assert command(host, "git -C /opt/odoo/src status --porcelain", become_user="erp") == ""
    assert command(host, "ls /opt/odoo/src/odoo/addons").split() == ["base"]
    addons = command(host, "ls /opt/odoo/src/addons").split()
    assert {"web", "mail", "sale_management", "purchase"} <= set(addons)
    assert "base" not in addons
    owner = command(host, "stat -c %U /opt/odoo/src /opt/odoo/venv /opt/odoo/custom/addons")
    assert owner.split() == ["erp"] * 3


@pytest.mark.parametrize("host", SOURCE_VMS)
def test_source_vm_postgresql_listens_on_5433(host):
    assert LEGACY_VMS[host]["lab_pg_port"] == 5433
    database = LEGACY_VMS[host]["lab_odoo_databases"][0]
    assert scalar(host, database, "SHOW port") == "5433"
    listening = shell(host, "ss -Hltn 'sport = :5433'")
    assert "0.0.0.0:5433" in listening


def test_every_database_answers_through_nginx(legacy_vm):
    _, variables = legacy_vm
    password, _ = lab_secret("odoo-admin-password")
    for database in variables["lab_odoo_databases"]:
        uid = json_rpc(variables["lab_http_port"], "common", "authenticate", database, "admin", password, {})
        assert isinstance(uid, int) and uid > 0, database


def test_web_health_passes_through_nginx(legacy_vm):
    _, variables = legacy_vm
    status, headers, body = http_get(variables["lab_http_port"], "/web/health")
    assert status == 200
    assert headers["Server"].startswith("nginx")
    assert json.loads(body)["status"] == "pass"


def test_websocket_route_reaches_the_gevent_worker(legacy_vm):
    # /websocket/health belongs to a database's modules: with several databases and no
    # dbfilter (legacy-vm-2), only a request that names its database finds it.
    _, variables = legacy_vm
    for database in variables["lab_odoo_databases"]:
        status, _, body = http_get(
            variables["lab_http_port"], "/websocket/health", {"X-Odoo-Database": database}
        )
        assert status == 200, database
        assert json.loads(body)["status"] == "pass", database


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
        assert scalar(host, database, "SHOW port") == str(LEGACY_VMS[host]["lab_pg_port"])


def test_custom_addons_are_installed_and_base_url_set(seeded_databases):
    for host, database, _ in seeded_databases:
        variables = LEGACY_VMS[host]
        addons = variables["lab_odoo_custom_addons"]
        names = ", ".join(f"'{addon}'" for addon in addons)
        installed = psql(
            host,
            database,
            "SELECT name, latest_version FROM ir_module_module"
            f" WHERE state = 'installed' AND name IN ({names})",
        )
        assert sorted(name for name, _ in installed) == sorted(addons), f"{host}/{database}"
        versions = dict(installed)
        if "lab_erp_extras" in versions:
            assert versions["lab_erp_extras"] == "19.0.1.2.0"
        url = scalar(host, database, "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'")
        expected = variables.get("lab_odoo_web_base_urls", {}).get(database, f"http://{host}.lab.internal")
        assert url == expected, f"{host}/{database}"


def test_migration_login_reaches_postgresql_through_the_published_port(legacy_vm):
    host, variables = legacy_vm
    password, mode = lab_secret(f"{host}-source-postgres-password")
    assert mode == 0o600
    endpoint = {
        "host": "127.0.0.1",
        "port": variables["lab_pg_host_port"],
        "user": "odoo_migration",
        "connect_timeout": 10,
    }
    with psycopg.connect(**endpoint, password=password, dbname="postgres") as connection:
        superuser, replication = connection.execute(
            "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        settings = dict(
            connection.execute(
                "SELECT name, setting FROM pg_settings"
                " WHERE name IN ('wal_level', 'port', 'listen_addresses')"
            ).fetchall()
        )
        databases = {row[0] for row in connection.execute("SELECT datname FROM pg_database").fetchall()}
    assert superuser and replication
    port = str(variables["lab_pg_port"])
    assert settings == {"wal_level": "replica", "port": port, "listen_addresses": "*"}
    assert set(variables["lab_odoo_databases"]) <= databases
    # pg_hba also lets it open a physical replication connection.
    physical = {"replication": "true", "autocommit": True, "cursor_factory": psycopg.ClientCursor}
    with psycopg.connect(**endpoint, password=password, **physical) as walsender:
        system_id = walsender.execute("IDENTIFY_SYSTEM").fetchone()[0]
    assert int(system_id) > 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**endpoint, password=password + "x", dbname="postgres").close()


def test_inventory_names_the_source_and_target_endpoints():
    template = (
        "{{ [odoo_migration_source_pg_host, odoo_migration_source_pg_port, odoo_migration_source_pg_user,"
        " odoo_migration_source_pg_password | hash('sha256'), odoo_migration_target_pg_host,"
        " odoo_migration_target_pg_port, odoo_migration_target_pg_user,"
        " odoo_migration_target_pg_password | hash('sha256')] | join(' ') }}"
    )
    results = ansible_adhoc("legacy", "ansible.builtin.debug", f'msg="{template}"')
    target_password, _ = lab_secret("target-postgres-password")
    for host, variables in LEGACY_VMS.items():
        source_password, _ = lab_secret(f"{host}-source-postgres-password")
        assert results[host]["msg"].split() == [
            "127.0.0.1",
            str(variables["lab_pg_host_port"]),
            "odoo_migration",
            hashlib.sha256(source_password.encode()).hexdigest(),
            "127.0.0.1",
            "5418",
            "postgres",
            hashlib.sha256(target_password.encode()).hexdigest(),
        ]


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
            f"{REPO}/tests/integration/files/filestore_digest.py "
            f"{LEGACY_VMS[host]['lab_odoo_data_dir']}/filestore/{database} "
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
    cron_rows = "SELECT count(*) FROM lab_audit_log WHERE source = 'cron'"
    before = {}
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
        before[database] = int(scalar(host, database, cron_rows))
    # Every database's cron ticks within the same minutes: wait for them together.
    waiting = {(host, database) for host, database, _ in seeded_databases}
    deadline = time.monotonic() + 180
    while waiting and time.monotonic() < deadline:
        waiting = {(h, d) for h, d in waiting if int(scalar(h, d, cron_rows)) <= before[d]}
        if waiting:
            time.sleep(10)
    assert not waiting, f"no cron row within 3 minutes in {sorted(waiting)}"


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


def https_health(port, name, context):
    """GET /web/health over TLS to 127.0.0.1:port, sending `name` as SNI and Host; the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET /web/health HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            return tls.recv(4096).split(b"\r\n", 1)[0].decode()


def test_a_vm_serves_its_public_url_over_tls_from_the_lab_ca():
    assert TLS_VMS, "no legacy VM of the inventory has a lab_https_port"
    assert LAB_CA.stat().st_mode & 0o777 == 0o644
    assert (STATE_DIR / "tls").stat().st_mode & 0o777 == 0o700
    for host in TLS_VMS:
        port, name = LEGACY_VMS[host]["lab_https_port"], f"{host}.lab.internal"
        trusted = ssl.create_default_context(cafile=str(LAB_CA))
        assert https_health(port, name, trusted).endswith("200 OK")
        with pytest.raises(ssl.SSLCertVerificationError):
            https_health(port, name, ssl.create_default_context())
        with pytest.raises(ssl.SSLCertVerificationError):
            https_health(port, "not-this-vm.lab.internal", trusted)


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


def test_odoo_base_image_runs_odoo_19_as_a_fixed_non_root_user_without_config():
    run = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", "odoo-mig/odoo:19.0", "-c",
         "id -u; id -g; odoo --version; test -e /etc/odoo/odoo.conf && echo config;"
         " dpkg -l | grep -c '^ii  postgresql-[0-9]* ' || true"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert run.stdout.split("\n")[:4] == ["100", "101", "Odoo Server 19.0", "0"]
