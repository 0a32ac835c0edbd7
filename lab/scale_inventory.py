"""Size the lab: legacy VMs beyond the two built in, written to inventories/lab/scale.yml.

    python lab/scale_inventory.py COUNT      (make lab-up LAB_VMS=COUNT; default 2)

The two built-in VMs (inventories/lab/hosts.yml) stay as they are. Each extra VM is another
packaged Odoo 19 like legacy-vm-1, with one database of its own (acme<N>) and ports of its own,
in the group `scale` (under `legacy`, so the lab builds and seeds it, and `wave=legacy` moves every
VM side by side). With COUNT 2 the file is removed. A lab that had more VMs keeps their containers
until `make lab-down` with the same count.
"""

import sys
from pathlib import Path

import yaml

BUILT_IN = 2
MOST = 8
SCALE_FILE = Path(__file__).resolve().parent.parent / "inventories" / "lab" / "scale.yml"


def extra_vms(count):
    """{host: variables} for legacy-vm-3 .. legacy-vm-<count>."""
    hosts = {}
    for number in range(BUILT_IN + 1, count + 1):
        hosts[f"legacy-vm-{number}"] = dict(
            lab_odoo_variant="packaged",
            lab_ssh_port=2200 + number,
            lab_http_port=8060 + number,
            lab_pg_host_port=5440 + number,
            lab_pg_port=5432,
            lab_odoo_databases=[f"acme{number}"],
            lab_odoo_data_dir="/var/lib/odoo/.local/share/Odoo",
            lab_odoo_custom_addons=["lab_legacy_traps"],
        )
    return hosts


def inventory(count):
    return {"all": {"children": {"legacy": {"children": {"scale": {"hosts": extra_vms(count)}}}}}}


def main(argv):
    try:
        count = int(argv[1])
    except (IndexError, ValueError):
        usage = f"usage: {argv[0]} COUNT (LAB_VMS: legacy VMs in the lab, {BUILT_IN} to {MOST})"
        print(usage, file=sys.stderr)
        return 2
    if not BUILT_IN <= count <= MOST:
        print(
            f"LAB_VMS={count}: the lab runs {BUILT_IN} to {MOST} legacy VMs (its tests need the {BUILT_IN} "
            f"built in; each VM is a PostgreSQL and an Odoo); set LAB_VMS between them",
            file=sys.stderr,
        )
        return 2
    if count == BUILT_IN:
        SCALE_FILE.unlink(missing_ok=True)
        return 0
    text = (
        f"---\n# Written by lab/scale_inventory.py (make lab-up LAB_VMS={count}); not committed.\n"
        + yaml.safe_dump(inventory(count), default_flow_style=None, sort_keys=False, indent=2)
    )
    if not SCALE_FILE.exists() or SCALE_FILE.read_text() != text:
        SCALE_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
