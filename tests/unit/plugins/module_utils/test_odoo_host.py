"""The host side of discovery that needs no running Odoo: search order, addons, checksums, concerns."""

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import discovery as _odoo_host
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import (
    discovery_state as _discovery_state,
)


def make_addon(directory, name, manifest="{'name': 'x', 'version': '19.0.1.0.0'}"):
    addon = directory / name
    addon.mkdir(parents=True)
    (addon / "__init__.py").write_text("")
    (addon / "__manifest__.py").write_text(manifest)
    return addon


def no_git(argv, data=None):
    return 1, "", "not a git repository"


@pytest.fixture
def tree(tmp_path):
    package = tmp_path / "src" / "odoo"
    make_addon(package / "addons", "base")
    make_addon(tmp_path / "src" / "addons", "sale")
    custom = tmp_path / "custom addons"
    make_addon(
        custom,
        "lab_extras",
        "{'name': 'Extras', 'version': '19.0.1.2.0', 'depends': ['sale'],"
        " 'external_dependencies': {'python': ['humanize', 'absent_lib'], 'bin': ['no-such-binary']}}",
    )
    make_addon(custom, "sale")
    (tmp_path / "empty").mkdir()
    settings = {
        "data_dir": {"value": str(tmp_path / "data"), "source": "config file"},
        "addons_path": {
            "value": [
                str(custom),
                str(tmp_path / "missing"),
                str(tmp_path / "empty"),
                str(package / "addons"),
            ],
            "source": "config file /etc/o.conf:3",
        },
    }
    return tmp_path, package, settings


def test_addons_paths_follow_odoo_search_order_and_skip_what_odoo_skips(tree):
    root, package, settings = tree
    entries, skipped = _odoo_host.addons_paths(settings, str(package), "19.0")
    assert [(entry["path"], entry["kind"]) for entry in entries] == [
        (str(package / "addons"), "core"),
        (str(root / "custom addons"), "custom"),
        (str(root / "src" / "addons"), "core"),
    ]
    assert [item["path"] for item in skipped] == [str(root / "missing"), str(root / "empty")]


def test_custom_addons_report_manifest_missing_dependencies_and_shadowing(tree):
    _root, package, settings = tree
    entries, _skipped = _odoo_host.addons_paths(settings, str(package), "19.0")
    packages = [{"name": "humanize", "version": "4.9.0", "location": "/venv", "in_virtualenv": True}]
    custom, shadowed = _odoo_host.describe_addons(no_git, entries, packages)
    extras = next(addon for addon in custom if addon["name"] == "lab_extras")
    assert extras["version"] == "19.0.1.2.0"
    assert extras["depends"] == ["sale"]
    assert extras["external_python_missing"] == ["absent_lib"]
    assert extras["external_bin_missing"] == ["no-such-binary"]
    assert extras["checksum"].startswith("sha256:")
    # The custom copy of sale comes first in the search order, so the core one is shadowed.
    assert shadowed == [{"addon": "sale", "used": entries[1]["path"], "shadowed": entries[2]["path"]}]


def test_tree_checksum_follows_content_and_ignores_byte_code(tmp_path):
    addon = make_addon(tmp_path, "a")
    first = _odoo_host.tree_checksum(str(addon))
    (addon / "__pycache__").mkdir()
    (addon / "__pycache__" / "x.cpython-313.pyc").write_bytes(b"\0")
    assert _odoo_host.tree_checksum(str(addon)) == first
    (addon / "models.py").write_text("# changed")
    assert _odoo_host.tree_checksum(str(addon)) != first


@pytest.mark.parametrize(
    ("version_info", "expected"),
    [
        (["19", "0", "0", "FINAL", "0", "''"], ("19.0", "19.0")),
        (["17", "0", "0", "FINAL", "0", "'e'"], ("17.0", "17.0e")),
        (["18", "0", "0", "RELEASE_CANDIDATE", "1", "''"], ("18.0", "18.0rc1")),
        (["'saas~18'", "3", "0", "FINAL", "0", "''"], ("saas~18.3", "saas~18.3")),
    ],
)
def test_release_of(version_info, expected):
    assert _odoo_host.release_of({"release": {"version_info": version_info}}) == expected


def test_exec_start_argv_reads_systemctl_show():
    value = (
        "{ path=/usr/bin/odoo ; argv[]=/usr/bin/odoo --config /etc/odoo/odoo.conf --logfile /var/log/o.log ; "
        "ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"
    )
    assert _odoo_host._exec_start_argv(value) == [
        "/usr/bin/odoo", "--config", "/etc/odoo/odoo.conf", "--logfile", "/var/log/o.log",
    ]  # fmt: skip
    assert _odoo_host._exec_start_argv("") == []


def minimal_instance(**overrides):
    instance = {
        "service": {"name": "odoo.service", "main_pid": 42},
        "config": {"errors": [], "notes": [], "file": "/etc/odoo/odoo.conf"},
        "databases": [
            {
                "name": "acme",
                "size_bytes": 3 << 30,
                "served": True,
                "modules": [{"name": "sale", "state": "to upgrade", "latest_version": "19.0.1.0"}],
                "attachments": {"missing_files": 0, "missing_examples": []},
                "parameters": {
                    "web.base.url": "http://x",
                    "database.uuid": "u",
                    "database.secret": {"present": True},
                },
                "filestore": {"path": "/d/filestore/acme", "files": 10, "bytes": 1 << 30},
                "crons": [
                    {"id": 1, "name": "tick", "nextcall": "2026-01-01", "lastcall": None, "failure_count": 0}
                ],
                "users": {"internal_active": 3},
            }
        ],
        "nginx": {"sites": []},
        "addons_paths": [],
        "addons_paths_skipped": [],
        "shadowed_addons": [],
        "custom_addons": [],
        "odoo": {"series": "19.0", "install": {"git": None}},
        "python": {"interpreter": "/usr/bin/python3"},
        "settings": {"workers": {"value": 2}, "max_cron_threads": {"value": 1}},
        "data_dir": {"path": "/d", "sessions": {"files": 3}},
    }
    instance.update(overrides)
    return instance


SETTINGS = {
    "admin_passwd": {"value": "$pbkdf2-sha512$x", "source": "config file"},
    "list_db": {"value": False},
    "proxy_mode": {"value": True},
    "workers": {"value": 0},
    "gevent_port": {"value": 8072},
}


def test_pending_modules_block_and_unfrozen_base_url_is_noted():
    concerns = _odoo_host.sort_concerns(_odoo_host.instance_concerns(minimal_instance(), SETTINGS))
    assert concerns[0]["id"] == "odoo_modules_pending"
    assert concerns[0]["severity"] == "blocker"
    assert "sale" in concerns[0]["message"]
    assert [item["id"] for item in concerns[1:]] == ["odoo_base_url_not_frozen"]


def test_split_moves_every_moving_number_out_of_the_facts():
    facts, measurements = _discovery_state.split_instance(minimal_instance())
    database = facts["databases"][0]
    assert "size_bytes" not in database and "filestore" not in database and "users" not in database
    assert database["crons"] == [{"id": 1, "name": "tick"}]
    assert database["filestore_path"] == "/d/filestore/acme"
    assert "main_pid" not in facts["service"] and "sessions" not in facts["data_dir"]
    assert measurements["databases"]["acme"]["size_bytes"] == 3 << 30
    assert measurements["databases"]["acme"]["crons"]["1"]["nextcall"] == "2026-01-01"


def test_plan_defaults_size_volumes_from_measurements():
    facts, measurements = _discovery_state.split_instance(minimal_instance())
    settings = {
        "registry": "127.0.0.1:5000",
        "base_image": "odoo-mig/odoo:19.0",
        "target_postgresql_version": 18,
        "tenancy": "dedicated",
        "namespace_prefix": "odoo-",
    }
    plan = _discovery_state.plan_defaults("Legacy_VM_1", "wave1", facts, measurements, settings)
    assert plan["image"] == "127.0.0.1:5000/odoo/legacy-vm-1:19.0"
    assert plan["namespace"] == "odoo-legacy-vm-1"
    assert plan["databases"] == ["acme"]
    assert plan["sizes"]["database_volume_gib"] == 6
    assert plan["sizes"]["filestore_volume_gib"] == 2
    assert plan["sizes"]["workers"] == 2


def test_filestore_size_counts_content_and_leaves_gc_markers_apart(tmp_path):
    store = tmp_path / "filestore" / "acme"
    (store / "ab").mkdir(parents=True)
    (store / "ab" / "ab12").write_bytes(b"12345")
    (store / "cd").mkdir()
    (store / "cd" / "cd34").write_bytes(b"123")
    (store / "checklist" / "ab").mkdir(parents=True)
    (store / "checklist" / "ab" / "ab12").write_bytes(b"")
    found = _odoo_host.filestore_size(str(store))
    assert (found["files"], found["bytes"], found["gc_markers"]) == (2, 8, 1)
    assert _odoo_host.filestore_size(str(tmp_path / "missing"))["exists"] is False
