import json

import pytest
import scale_inventory
import yaml


@pytest.fixture
def scale_file(tmp_path, monkeypatch):
    path = tmp_path / "scale.yml"
    monkeypatch.setattr(scale_inventory, "SCALE_FILE", path)
    return path


def test_four_vms_add_two_packaged_vms_with_their_own_ports_and_databases(scale_file):
    assert scale_inventory.main(["scale_inventory.py", "4"]) == 0
    hosts = yaml.safe_load(scale_file.read_text())["all"]["children"]["legacy"]["children"]["scale"]["hosts"]
    assert sorted(hosts) == ["legacy-vm-3", "legacy-vm-4"]
    assert [hosts[h]["lab_odoo_databases"] for h in sorted(hosts)] == [["acme3"], ["acme4"]]
    # Ports of their own, none of the built-in VMs' (2201-2202, 8061-8062, 5441-5442).
    ports = [hosts[h][key] for h in hosts for key in ("lab_ssh_port", "lab_http_port", "lab_pg_host_port")]
    assert len(set(ports)) == len(ports)
    assert not set(ports) & {2201, 2202, 8061, 8062, 5441, 5442}


def test_two_vms_remove_the_file_and_a_rerun_changes_nothing(scale_file):
    scale_inventory.main(["scale_inventory.py", "3"])
    written = scale_file.stat().st_mtime_ns
    scale_inventory.main(["scale_inventory.py", "3"])
    assert scale_file.stat().st_mtime_ns == written
    assert scale_inventory.main(["scale_inventory.py", "2"]) == 0
    assert not scale_file.exists()


@pytest.mark.parametrize("count", ["1", "9", "four"])
def test_a_count_out_of_range_is_refused_and_changes_nothing(scale_file, count, capsys):
    scale_file.write_text(json.dumps({"kept": True}))
    assert scale_inventory.main(["scale_inventory.py", count]) == 2
    assert json.loads(scale_file.read_text()) == {"kept": True}
    assert "LAB_VMS" in capsys.readouterr().err
