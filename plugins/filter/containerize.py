# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn an instance's profile (facts.yml) into its image and container settings."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six.moves.urllib.parse import urlsplit

# Settings a container keeps from the VM as they were (sizing and behaviour, not paths).
KEPT_SETTINGS = (
    "workers",
    "max_cron_threads",
    "limit_memory_hard",
    "limit_memory_soft",
    "limit_request",
    "limit_time_cpu",
    "limit_time_real",
    "limit_time_real_cron",
    "db_maxconn",
    "server_wide_modules",
    "unaccent",
    "log_level",
    "without_demo",
)
CONTAINER_SETTINGS = {
    "addons_path": "/mnt/extra-addons",
    "proxy_mode": True,
    "http_interface": "0.0.0.0",
    "http_port": 8069,
    "gevent_port": 8072,
    "list_db": False,
}


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def image_requirements(instance):
    """Pinned pip requirements of the custom addons that the VM had from pip, not from the OS."""
    packages = {_canonical(p["name"]): p for p in instance.get("python", {}).get("packages", [])}
    wanted = set()
    for addon in instance.get("custom_addons", []):
        for name in addon.get("external_python", []):
            package = packages.get(_canonical(name))
            if package is None:
                raise AnsibleFilterError(
                    "addon %s needs the Python package %s, which the VM does not have: "
                    "fix the VM or the addon before containerizing" % (addon["name"], name)
                )
            from_pip = package.get("in_virtualenv") or "site-packages" in (package.get("location") or "")
            if from_pip:
                wanted.add("%s==%s" % (package["name"], package["version"]))
    return sorted(wanted)


def database_filter(instance, databases):
    """The dbfilter a container needs to serve exactly the VM's databases."""
    configured = instance.get("settings", {}).get("dbfilter", {}).get("value")
    if configured:
        return configured
    if len(databases) == 1:
        return "^%s$" % re.escape(databases[0])
    first_labels = set()
    for site in instance.get("nginx", {}).get("sites", []):
        for route in site.get("odoo_routes", []):
            first_labels.update(name.split(".")[0] for name in route.get("server_names", []))
    if set(databases) <= first_labels:
        # Each database answers on its own host name (globex.example.com -> globex).
        return "^%d$"
    return "^(%s)$" % "|".join(re.escape(name) for name in sorted(databases))


def image_config(instance, databases, overrides=None):
    """odoo.conf options for the instance's image: the VM's sizing, container paths and ports."""
    settings = instance.get("settings", {})
    config = dict(CONTAINER_SETTINGS)
    for key in KEPT_SETTINGS:
        if key in settings and settings[key].get("value") is not None:
            config[key] = settings[key]["value"]
    config["dbfilter"] = database_filter(instance, databases)
    # The databases the containers serve and schedule: the cron lists db_name, never every
    # database its role can see on a target other instances share.
    config["db_name"] = sorted(databases)
    config.update(overrides or {})
    served = config.get("db_name") or []
    served = served.split(",") if isinstance(served, str) else list(served)
    foreign = sorted(set(name.strip() for name in served) - set(databases))
    if not served or foreign:
        raise AnsibleFilterError(
            "db_name %s in the overrides would let the containers serve or schedule %s, which are not this "
            "instance's databases (%s): remove db_name from the overrides"
            % (
                config.get("db_name"),
                ", ".join(foreign) or "every database its role sees",
                ", ".join(databases),
            )
        )
    return config


def addon_sources(instance):
    """[{name, path (on the VM), checksum}] of the custom addons to ship."""
    return [
        {"name": addon["name"], "path": addon["path"], "checksum": addon["checksum"]}
        for addon in instance.get("custom_addons", [])
        if addon.get("installable", True)
    ]


def upstream_map(instance, web_address, websocket_address):
    """{legacy address: container address} for every Odoo upstream the VM's nginx uses."""
    settings = instance.get("settings", {})
    http_port = settings.get("http_port", {}).get("value", 8069)
    gevent_port = settings.get("gevent_port", {}).get("value", 8072)
    mapping = {}
    for site in instance.get("nginx", {}).get("sites", []):
        for servers in site.get("upstreams", {}).values():
            for server in servers:
                port = server.rsplit(":", 1)[-1]
                if port == str(http_port):
                    mapping[server] = web_address
                elif port == str(gevent_port):
                    mapping[server] = websocket_address
    if not mapping:
        raise AnsibleFilterError(
            "no nginx upstream of the VM points at Odoo's ports %s/%s: the application switch needs them. "
            "Check the profile's nginx section" % (http_port, gevent_port)
        )
    return mapping


def public_hosts(instance):
    """{database: the Host its users reach it by}, from web.base.url (Odoo's own idea of its URL)."""
    hosts = {}
    for database in instance.get("databases", []):
        url = (database.get("parameters") or {}).get("web.base.url") or ""
        hosts[database["name"]] = urlsplit(url).netloc or "localhost"
    return hosts


class FilterModule:
    def filters(self):
        return {
            "image_requirements": image_requirements,
            "image_config": image_config,
            "addon_sources": addon_sources,
            "upstream_map": upstream_map,
            "public_hosts": public_hosts,
        }
