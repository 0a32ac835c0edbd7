"""The monitoring filters: targets follow where the instance serves from; probe modules are named safely."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sysgenpro.odoo_migration.plugins.filter.monitoring import (
    monitoring_targets,
    probe_module,
)

WATCHED = {
    "host": "legacy-vm-1",
    "address": "172.18.0.5",
    "databases": ["acme", "acme-test"],
    "backups": True,
    "exporters": {"node": "172.18.0.5:9100", "postgres": "172.18.0.5:9187", "pgbackrest": "172.18.0.5:9854"},
    "modules": "odoo_legacy-vm-1",
    "vm_url": "https://legacy-vm-1/",
}


def test_probe_modules_are_named_with_letters_digits_and_underscores():
    assert probe_module("odoo_legacy-vm-1", "acme-test", "login") == "odoo_legacy_vm_1_acme_test_login"


def test_on_the_vm_every_exporter_and_the_vms_web_server_are_targets():
    targets = monitoring_targets(WATCHED)
    assert targets["node"] == [
        {"targets": ["172.18.0.5:9100"], "labels": {"instance_of": "legacy-vm-1", "serving": "vm"}}
    ]
    assert [group["targets"] for group in targets["odoo_health"]] == [
        ["https://legacy-vm-1/web/health"],
        ["https://legacy-vm-1/web/health"],
    ]
    login = targets["odoo_login"][1]
    assert login["targets"] == ["https://legacy-vm-1/jsonrpc"]
    assert login["labels"] == {
        "instance_of": "legacy-vm-1",
        "serving": "vm",
        "database": "acme-test",
        "probe": "odoo_login",
        "__param_module": "odoo_legacy_vm_1_acme_test_login",
    }


def test_once_moved_the_probes_go_to_the_container_and_the_target_joins_postgres():
    targets = monitoring_targets(
        WATCHED,
        serving="containers",
        container_url="http://odoo-web:8069",
        target_pg_exporter="pg-exporter:9187",
    )
    assert {group["targets"][0] for group in targets["odoo_health"]} == {"http://odoo-web:8069/web/health"}
    assert all(group["labels"]["serving"] == "containers" for group in targets["odoo_login"])
    assert [(group["targets"], group["labels"]["serving"]) for group in targets["postgres"]] == [
        (["172.18.0.5:9187"], "vm"),
        (["pg-exporter:9187"], "containers"),
    ]
    # Until finalize, the VM still runs the reverse path: its exporters stay.
    assert targets["node"] and targets["pgbackrest"]


def test_a_retired_vm_leaves_no_exporter_behind():
    targets = monitoring_targets(
        WATCHED,
        serving="containers",
        vm_retired=True,
        container_url="http://odoo-web:8069",
        target_pg_exporter="pg-exporter:9187",
    )
    assert targets["node"] == [] and targets["pgbackrest"] == []
    assert [group["targets"] for group in targets["postgres"]] == [["pg-exporter:9187"]]
    assert len(targets["odoo_health"]) == 2


def test_without_backups_no_pgbackrest_target():
    watched = dict(WATCHED, exporters=dict(WATCHED["exporters"], pgbackrest=""))
    assert monitoring_targets(watched)["pgbackrest"] == []


@pytest.mark.parametrize(
    "watched, options, problem",
    [
        ({k: v for k, v in WATCHED.items() if k != "modules"}, {}, "has no modules"),
        (WATCHED, {"serving": "kubernetes"}, "serving must be vm or containers"),
        (WATCHED, {"serving": "containers"}, "needs container_url"),
    ],
)
def test_bad_input_names_the_problem(watched, options, problem):
    with pytest.raises(AnsibleFilterError, match=problem):
        monitoring_targets(watched, **options)
