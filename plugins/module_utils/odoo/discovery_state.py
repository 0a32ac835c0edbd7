# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Split what discovery found into facts (the instance as it is) and measurements (sizes, rates, clocks).

facts.yml must only change when the VM changes, so every number that moves on its own
(database bytes, WAL rate, cron clocks, sequence values, sessions) goes to measurements.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

FACTS_FORMAT = 1
# Server values of pg_migration_preflight that move on their own.
VOLATILE_SERVER_KEYS = ("database_bytes", "replication_slots_used", "wal_senders_used")
# Concerns about a passing state (a transaction open now, this run's WAL rate): they go to measurements
# so facts.yml does not flap; the wave report still shows them.
TRANSIENT_CONCERNS = ("long_transaction", "prepared_transaction", "inactive_slot", "wal_budget")


def _pop_path(data, path):
    """Remove data[path...] and return it (None when absent)."""
    for key in path[:-1]:
        data = data.get(key) if isinstance(data, dict) else None
        if data is None:
            return None
    return data.pop(path[-1], None) if isinstance(data, dict) else None


def split_instance(instance):
    """(facts, measurements) of one odoo_instance_info instance."""
    facts = copy.deepcopy(instance)
    measurements = {
        "main_pid": _pop_path(facts, ["service", "main_pid"]),
        "sessions": _pop_path(facts, ["data_dir", "sessions"]),
        "databases": {},
    }
    for database in facts.get("databases", []):
        crons = database.get("crons", [])
        measurements["databases"][database["name"]] = {
            "size_bytes": database.pop("size_bytes", None),
            "filestore": database.pop("filestore", None),
            "attachments": database.pop("attachments", None),
            "users": database.pop("users", None),
            "crons": dict(
                (
                    str(cron["id"]),
                    dict((key, cron.pop(key, None)) for key in ("nextcall", "lastcall", "failure_count")),
                )
                for cron in crons
            ),
        }
        if measurements["databases"][database["name"]]["filestore"]:
            database["filestore_path"] = measurements["databases"][database["name"]]["filestore"]["path"]
    return facts, measurements


def split_preflight(preflight):
    """(facts, measurements) of one pg_migration_preflight result."""
    facts = copy.deepcopy(preflight)
    for key in ("changed", "invocation", "failed", "msg"):
        facts.pop(key, None)
    measurements = {
        "wal_rate_bytes_per_second": facts.pop("wal_rate_bytes_per_second", None),
        "long_transactions": facts.pop("long_transactions", None),
        "prepared_transactions": facts.pop("prepared_transactions", None),
        "slots": facts.pop("slots", None),
        "database_bytes": _pop_path(facts, ["summary", "database_bytes"]),
        "tables": {},
        "sequences": {},
    }
    for server_key in ("server", "target"):
        server = facts.get(server_key) or {}
        for key in VOLATILE_SERVER_KEYS:
            if key in server:
                measurements.setdefault(server_key, {})[key] = server.pop(key)
    for table in facts.get("tables", []):
        name = "%s.%s" % (table.get("schema"), table.get("name"))
        measurements["tables"][name] = dict((key, table.pop(key, None)) for key in ("bytes", "rows_estimate"))
    for sequence in facts.get("sequences", []):
        name = "%s.%s" % (sequence.get("schema"), sequence.get("name"))
        measurements["sequences"][name] = dict(
            (key, sequence.pop(key, None)) for key in ("last_value", "is_called")
        )
    concerns = facts.get("concerns", [])
    measurements["transient_concerns"] = [item for item in concerns if item["id"] in TRANSIENT_CONCERNS]
    kept = [dict(item) for item in concerns if item["id"] not in TRANSIENT_CONCERNS]
    # Messages quote sizes and row estimates that move; facts keep what identifies a concern and its fix.
    measurements["concern_messages"] = dict((concern_key(item), item.pop("message", "")) for item in kept)
    facts["concerns"] = kept
    measurements["summary"] = facts.pop("summary", None)
    facts["blockers"] = len([item for item in kept if item["severity"] == "blocker"])
    return facts, measurements


def concern_key(item):
    """How measurements.yml names a concern of facts.yml: id and subject."""
    return "%s %s" % (item["id"], item["subject"])


def _ceil_gib(value_bytes, factor):
    if not value_bytes:
        return 1
    gib = float(value_bytes) * factor / (1 << 30)
    return max(1, int(gib) + (0 if gib == int(gib) else 1))


def plan_defaults(host, wave, facts, measurements, settings):
    """The decisions an operator reviews, with defaults derived from what was found."""
    databases = [item["name"] for item in facts.get("databases", []) if item.get("served")]
    database_bytes = sum(
        (measurements["databases"].get(name) or {}).get("size_bytes") or 0 for name in databases
    )
    filestore_bytes = sum(
        ((measurements["databases"].get(name) or {}).get("filestore") or {}).get("bytes") or 0
        for name in databases
    )
    slug = host.replace("_", "-").lower()
    return {
        "format": FACTS_FORMAT,
        "wave": wave,
        "odoo_series": facts["odoo"]["series"],
        "image": "%s/odoo/%s:%s" % (settings["registry"], slug, facts["odoo"]["series"]),
        "base_image": settings["base_image"],
        "databases": databases,
        "target_postgresql_version": settings["target_postgresql_version"],
        "tenancy": settings["tenancy"],
        "namespace": settings["namespace_prefix"] + slug,
        # Each role of the instance and its name on the target (roles are cluster-wide, tenants are not).
        "target_roles": dict(settings.get("target_roles") or {}),
        "sizes": {
            "database_volume_gib": _ceil_gib(database_bytes, 2.0),
            "filestore_volume_gib": _ceil_gib(filestore_bytes, 1.5),
            "workers": (facts["settings"].get("workers") or {}).get("value") or 0,
            "max_cron_threads": (facts["settings"].get("max_cron_threads") or {}).get("value") or 0,
        },
    }
