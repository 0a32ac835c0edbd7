# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that name an instance's monitoring targets (Prometheus file-based discovery) and probe modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError


def probe_module(prefix, database, kind):
    """The blackbox module of one database's probe: letters, digits and underscores only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "%s_%s_%s" % (prefix, database, kind))


def monitoring_targets(watched, serving="vm", vm_retired=False, container_url="", target_pg_exporter=""):
    """{job: [target group]} of one instance, from what baseline_monitoring recorded (monitoring.yml): the
    VM's exporters until it is retired, the probes where the instance serves from (its VM's web server or,
    once moved, its web container), and the target PostgreSQL's exporter once moved."""
    if serving not in ("vm", "containers"):
        raise AnsibleFilterError("monitoring_targets: serving must be vm or containers, not %r" % serving)
    for key in ("host", "exporters", "databases", "modules", "vm_url"):
        if key not in watched:
            raise AnsibleFilterError(
                "monitoring_targets: the record has no %s: run baseline_monitoring for this host again" % key
            )
    if serving == "containers" and not container_url:
        raise AnsibleFilterError(
            "monitoring_targets: a moved instance needs container_url (its web container's URL)"
        )
    labels = {"instance_of": watched["host"], "serving": serving}

    def exporter(job):
        address = watched["exporters"].get(job)
        if vm_retired or not address:
            return []
        return [{"targets": [address], "labels": dict(labels, serving="vm")}]

    postgres = exporter("postgres")
    if serving == "containers" and target_pg_exporter:
        postgres.append({"targets": [target_pg_exporter], "labels": dict(labels)})
    url = (container_url if serving == "containers" else watched["vm_url"]).rstrip("/")

    def probes(kind, path):
        return [
            {
                "targets": [url + path],
                "labels": dict(
                    labels,
                    database=database,
                    probe="odoo_" + kind,
                    __param_module=probe_module(watched["modules"], database, kind),
                ),
            }
            for database in watched["databases"]
        ]

    return {
        "node": exporter("node"),
        "postgres": postgres,
        "pgbackrest": exporter("pgbackrest"),
        "odoo_health": probes("health", "/web/health"),
        "odoo_login": probes("login", "/jsonrpc"),
    }


class FilterModule:
    def filters(self):
        return {"probe_module": probe_module, "monitoring_targets": monitoring_targets}
