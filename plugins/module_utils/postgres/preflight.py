# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only preflight of a PostgreSQL logical-replication migration, private.

Two halves:

* collection: functions over an open psycopg 3 connection that read the catalogs (in one
  REPEATABLE READ READ ONLY transaction per server) and return plain dicts;
* classification: pure functions that take those dicts and return concerns
  ({id, severity, subject, message, fix}); they need no server and are unit-tested alone.

run_preflight() ties them together. Nothing here writes to either server. The concern
ids are stable and documented in docs/preflight.md.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    schema_options as _schema_options,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import tenancy as _tenancy
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.cutover import (
    DATABASE_ROLES_SQL,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.replica_identity import (
    POLICY_FULL,
    POLICY_REFUSE,
    RELREPLIDENT,
    REPLICA_IDENTITY_POLICIES,
    USER_SCHEMAS,
    collect_tables,
    collect_unique_indexes,
    index_problems,
    pick_identity_index,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    literal as quote_literal,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import quote_ident

APPLICATION_NAME = "odoo_migration_preflight"
BLOCKER = "blocker"
WARNING = "warning"
INFO = "info"
SEVERITIES = (BLOCKER, WARNING, INFO)
_SEVERITY_RANK = dict((severity, rank) for rank, severity in enumerate(SEVERITIES))


MIN_SOURCE_VERSION = 100000  # logical replication exists from PostgreSQL 10
# Slots and WAL senders the migration needs on the source: one for the migration's slot,
# two more when the initial copy falls back to native table sync (its default two workers).
NEEDED_SOURCE_SLOTS = 1
COMFORTABLE_SOURCE_SLOTS = 3
SEQUENCE_USED_RATIO = 0.9
LISTED_NAMES = 10
QUERY_TEXT_CHARS = 200
SEQUENCE_BATCH = 200

# --------------------------------------------------------------------------------------
# Concerns
# --------------------------------------------------------------------------------------


# Every concern id, as docs/preflight.md lists them. Stable: tools and playbooks match on them.
CONCERN_IDS = frozenset(
    """
    source_version_unsupported source_in_recovery wal_level max_replication_slots max_wal_senders
    max_slot_wal_keep_size wal_budget source_replication_privilege source_superuser_missing
    limited_visibility replica_identity_index replica_identity_missing replica_identity_nothing
    replica_identity_full unlogged_table partitioned_tables standalone_sequences sequence_unreadable
    sequence_near_limit large_objects materialized_views foreign_tables event_triggers
    extension_missing_on_target extension_version_older_on_target extension_version_unknown_on_target
    long_transaction prepared_transaction inactive_slot existing_publication existing_subscription
    collation_version_mismatch target_version_older target_wal_level target_logical_replication_workers
    target_max_replication_slots target_max_wal_senders target_superuser_missing target_is_source
    target_database_exists encoding_mismatch collation_mismatch collation_provider
    locale_missing_on_target collation_version_differs schema_option_refused tenant_collision
    """.split()
)


def concern(concern_id, severity, subject, message, fix):
    """One finding. severity is blocker, warning or info; concern_id one of CONCERN_IDS."""
    if severity not in _SEVERITY_RANK:
        raise ValueError("unknown severity %r" % (severity,))
    if concern_id not in CONCERN_IDS:
        raise ValueError("undocumented concern id %r" % (concern_id,))
    return {"id": concern_id, "severity": severity, "subject": subject, "message": message, "fix": fix}


def sort_concerns(concerns):
    """Blockers first, then warnings, then info; the order within a severity is kept."""
    return sorted(concerns, key=lambda item: _SEVERITY_RANK[item["severity"]])


def summarize(concerns):
    """Counts per severity, the number of blockers and ready (no blocker)."""
    counts = dict((severity, 0) for severity in SEVERITIES)
    for item in concerns:
        counts[item["severity"]] += 1
    return {
        "counts": counts,
        "blockers": counts[BLOCKER],
        "warnings": counts[WARNING],
        "ready": counts[BLOCKER] == 0,
    }


# --------------------------------------------------------------------------------------
# Quoting and formatting (for the SQL shown in fixes)
# --------------------------------------------------------------------------------------


def qualified(row):
    """schema.name, quoted where needed (the server's own quoting when the row carries it)."""
    return row.get("qualified") or "%s.%s" % (quote_ident(row["schema"]), quote_ident(row["name"]))


def human_bytes(value):
    if value is None:
        return "unknown"
    value = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024.0
    return "%.1f TB" % value  # pragma: no cover


def human_seconds(seconds):
    seconds = int(round(seconds))
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    return "%.1f h" % (seconds / 3600.0)


def counted(number, noun):
    """1 table, 2 tables."""
    return "%d %s%s" % (number, noun, "" if number == 1 else "s")


def _name_list(names):
    names = list(names)
    shown = ", ".join(names[:LISTED_NAMES])
    if len(names) > LISTED_NAMES:
        shown += " and %d more" % (len(names) - LISTED_NAMES)
    return shown


def major_version(version_num):
    """150004 -> 15, 90624 -> 9.6 (as a string for 9.x), None -> None."""
    if version_num is None:
        return None
    version_num = int(version_num)
    if version_num >= 100000:
        return str(version_num // 10000)
    return "%d.%d" % (version_num // 10000, version_num // 100 % 100)


def parse_version(text):
    """'1.6' -> (1, 6); '2.3.1' -> (2, 3, 1); None when it is not dotted numbers."""
    if text is None or not re.match(r"^\d+(\.\d+)*$", str(text)):
        return None
    return tuple(int(part) for part in str(text).split("."))


def _normalize_locale(name):
    """'en_US.UTF-8' and 'en_US.utf8' name the same locale."""
    if not name:
        return name
    lowered = name.lower()
    if "." in lowered:
        base, codeset = lowered.split(".", 1)
        return base + "." + codeset.replace("-", "")
    return lowered


# --------------------------------------------------------------------------------------
# Classification: replica identity, unlogged and partitioned tables
# --------------------------------------------------------------------------------------


def _missing_identity_fix(table, indexes, policy):
    name = qualified(table)
    if policy == POLICY_FULL:
        return "ALTER TABLE %s REPLICA IDENTITY FULL;" % name
    # A unique index that fails only on nullable columns: make them NOT NULL and use it.
    for index in sorted(indexes, key=lambda ix: ix["name"]):
        problems = index_problems(index)
        if len(problems) == 1 and problems[0].startswith("nullable"):
            nullable = [
                c["name"] for c in index.get("columns") or [] if c.get("name") and not c.get("not_null")
            ]
            statements = [
                "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;" % (name, quote_ident(column))
                for column in nullable
            ]
            statements.append(
                "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;"
                % (name, index.get("quoted_name") or quote_ident(index["name"]))
            )
            return " ".join(statements) + " -- only if those columns never hold NULL"
    return (
        "ALTER TABLE %s ADD PRIMARY KEY (<columns that identify a row>); "
        "-- or accept full-row identity: set replica_identity_policy: full and run "
        "ALTER TABLE %s REPLICA IDENTITY FULL;" % (name, name)
    )


def classify_table(table, indexes, policy=POLICY_REFUSE):
    """Classify one table's replica identity.

    table: schema, name (qualified), relkind, relpersistence, relreplident, bytes, rows_estimate.
    indexes: its unique indexes (see index_problems for the keys).
    Returns (entry, concerns): entry is the table as the module returns it, with
    replica_identity one of primary_key, unique_index, none, full: what logical replication
    can identify its rows by once the fixes in the concerns are applied (a primary key or
    a usable unique index), 'full' when REPLICA IDENTITY FULL is already set, 'none' otherwise.
    """
    if policy not in REPLICA_IDENTITY_POLICIES:
        raise ValueError("replica_identity_policy must be one of %s" % ", ".join(REPLICA_IDENTITY_POLICIES))
    name = qualified(table)
    setting = RELREPLIDENT.get(table.get("relreplident") or "d", "default")
    unlogged = table.get("relpersistence") == "u"
    partitioned = table.get("relkind") == "p"
    entry = {
        "schema": table["schema"],
        "name": table["name"],
        "bytes": table.get("bytes"),
        "rows_estimate": table.get("rows_estimate"),
        "unlogged": unlogged,
        "partitioned": partitioned,
        "replica_identity": "none",
        "replica_identity_index": None,
        "replica_identity_setting": setting,
    }
    concerns = []
    size = "%s, %s" % (human_bytes(table.get("bytes")), _rows(table.get("rows_estimate")))

    if unlogged:
        concerns.append(
            concern(
                "unlogged_table",
                BLOCKER,
                name,
                "%s is UNLOGGED (%s): its changes are never written to WAL, so logical replication "
                "cannot carry them and its content would be missing or stale on the target" % (name, size),
                "ALTER TABLE %s SET LOGGED; -- rewrites the table into WAL; "
                "or drop it if its content is disposable" % name,
            )
        )

    primary = [ix for ix in indexes if ix.get("is_primary")]
    usable_primary = primary[0] if primary and not index_problems(primary[0]) else None
    explicit = [ix for ix in indexes if ix.get("is_replident")]
    candidate = pick_identity_index(indexes)

    if setting == "full":
        entry["replica_identity"] = "full"
        if usable_primary is None and candidate is None and not partitioned:
            concerns.append(
                concern(
                    "replica_identity_full",
                    INFO,
                    name,
                    "%s uses REPLICA IDENTITY FULL (%s): every UPDATE and DELETE writes the whole old "
                    "row to WAL and the target finds the row by comparing all columns" % (name, size),
                    "none needed; a primary key (ALTER TABLE %s ADD PRIMARY KEY (...);) makes apply cheaper"
                    % name,
                )
            )
        return entry, concerns

    if setting == "index" and explicit and not index_problems(explicit[0]):
        entry["replica_identity"] = "unique_index"
        entry["replica_identity_index"] = explicit[0]["name"]
        return entry, concerns

    if setting == "default" and usable_primary is not None:
        entry["replica_identity"] = "primary_key"
        return entry, concerns

    if partitioned:
        # A partitioned table holds no rows; its partitions are checked as tables of their own.
        if usable_primary is not None:
            entry["replica_identity"] = "primary_key"
        elif candidate is not None:
            entry["replica_identity"] = "unique_index"
            entry["replica_identity_index"] = candidate["name"]
        return entry, concerns

    now = {
        "default": "has no primary key",
        "nothing": "is set to REPLICA IDENTITY NOTHING",
        "index": "is set to REPLICA IDENTITY USING INDEX on an index that is gone or unusable",
    }[setting]
    failure = "once it is published, UPDATE and DELETE on it fail on the source"

    if usable_primary is not None:
        entry["replica_identity"] = "primary_key"
        concerns.append(
            concern(
                "replica_identity_nothing",
                WARNING,
                name,
                "%s %s although it has the primary key %s; %s" % (name, now, usable_primary["name"], failure),
                "ALTER TABLE %s REPLICA IDENTITY DEFAULT;" % name,
            )
        )
        return entry, concerns

    if candidate is not None:
        entry["replica_identity"] = "unique_index"
        entry["replica_identity_index"] = candidate["name"]
        columns = ", ".join(column["name"] for column in candidate.get("columns") or [])
        concerns.append(
            concern(
                "replica_identity_index",
                WARNING,
                name,
                "%s %s (%s) but the unique index %s on NOT NULL columns (%s) can identify its rows; "
                "%s until the index is set as its replica identity"
                % (name, now, size, candidate["name"], columns, failure),
                "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;"
                % (name, candidate.get("quoted_name") or quote_ident(candidate["name"])),
            )
        )
        return entry, concerns

    rejected = [
        "%s: %s" % (ix["name"], "; ".join(index_problems(ix))) for ix in indexes if not ix.get("is_primary")
    ]
    if primary:
        rejected.insert(0, "primary key %s: %s" % (primary[0]["name"], "; ".join(index_problems(primary[0]))))
    detail = (" (unusable unique indexes: %s)" % " | ".join(rejected)) if rejected else ""
    if policy == POLICY_FULL:
        severity = WARNING
        consequence = (
            "it needs REPLICA IDENTITY FULL (policy full): every UPDATE and DELETE then writes the whole "
            "old row to WAL and the target finds the row by comparing all columns"
        )
    else:
        severity = BLOCKER
        consequence = "%s; replica_identity_policy is refuse" % failure
    concerns.append(
        concern(
            "replica_identity_missing",
            severity,
            name,
            "%s %s and no unique index usable as replica identity%s (%s); %s"
            % (name, now, detail, size, consequence),
            _missing_identity_fix(table, indexes, policy),
        )
    )
    return entry, concerns


def _rows(value):
    return "rows unknown (never analysed)" if value is None else "about %s rows" % value


def classify_tables(tables, indexes, policy=POLICY_REFUSE):
    """Classify every table. indexes: unique index dicts, each with table_oid.

    Returns (entries, concerns), entries in the order of tables.
    """
    by_table = {}
    for index in indexes:
        by_table.setdefault(index["table_oid"], []).append(index)
    entries = []
    concerns = []
    partitioned = []
    for table in tables:
        entry, found = classify_table(table, by_table.get(table.get("oid"), []), policy)
        entries.append(entry)
        concerns.extend(found)
        if entry["partitioned"]:
            partitioned.append(qualified(table))
    if partitioned:
        concerns.append(
            concern(
                "partitioned_tables",
                INFO,
                counted(len(partitioned), "partitioned table"),
                "partitioned tables %s: their rows live in partitions, each published as a table of its own"
                % _name_list(partitioned),
                "publish with publish_via_partition_root = true if the target partitions differently",
            )
        )
    return entries, concerns


# --------------------------------------------------------------------------------------
# Classification: sequences
# --------------------------------------------------------------------------------------


def sequence_entry(row):
    return {
        "schema": row["schema"],
        "name": row["name"],
        "owned_by": row.get("owned_by"),
        "last_value": row.get("last_value"),
        "is_called": row.get("is_called"),
        "data_type": row.get("data_type"),
        "increment": row.get("increment"),
    }


def classify_sequences(sequences):
    """Concerns about sequences: standalone ones, unreadable ones, nearly exhausted ones.

    Each row: schema, name, owned_by (schema.table.column or None), last_value, is_called,
    data_type, increment, min_value, max_value, cycle, readable.
    """
    concerns = []
    standalone = [qualified(row) for row in sequences if not row.get("owned_by")]
    if standalone:
        concerns.append(
            concern(
                "standalone_sequences",
                INFO,
                counted(len(standalone), "standalone sequence"),
                "%s owned by no column (%s), e.g. Odoo's ir_sequence_NNN document numbering; "
                "logical replication does not carry sequences and max(column)-based syncs miss these"
                % (counted(len(standalone), "sequence"), _name_list(standalone)),
                "copy every sequence exactly after the write fence: SELECT setval('<sequence>', "
                "<last_value>, <is_called>); with the values read from the fenced source (the engine does)",
            )
        )
    for row in sequences:
        name = qualified(row)
        if row.get("readable") is False:
            concerns.append(
                concern(
                    "sequence_unreadable",
                    WARNING,
                    name,
                    "the preflight user may not read sequence %s, so its value cannot be copied" % name,
                    "GRANT SELECT ON SEQUENCE %s TO <migration user>;" % name,
                )
            )
            continue
        used = _sequence_used_ratio(row)
        if used is not None and used >= SEQUENCE_USED_RATIO:
            concerns.append(
                concern(
                    "sequence_near_limit",
                    WARNING,
                    name,
                    "sequence %s (%s) is at %s of its range (last_value %s, limit %s)"
                    % (
                        name,
                        row.get("data_type"),
                        "%d%%" % int(used * 100),
                        row.get("last_value"),
                        row.get("max_value") if (row.get("increment") or 1) > 0 else row.get("min_value"),
                    ),
                    "ALTER SEQUENCE %s AS bigint MAXVALUE 9223372036854775807; "
                    "-- and widen the column it feeds to bigint" % name,
                )
            )
    return concerns


def _sequence_used_ratio(row):
    last = row.get("last_value")
    low, high = row.get("min_value"), row.get("max_value")
    if last is None or low is None or high is None or row.get("cycle") or high <= low:
        return None
    if (row.get("increment") or 1) > 0:
        return float(last - low) / float(high - low)
    return float(high - last) / float(high - low)


# --------------------------------------------------------------------------------------
# Classification: extensions and versions
# --------------------------------------------------------------------------------------


def compare_extensions(source_extensions, target_available, target_major=None):
    """Each source extension against what the target server can install.

    source_extensions: [{name, version, schema}]; target_available: None (no target) or
    {name: {"default_version": v, "versions": [v, ...]}} from pg_available_extension_versions.
    Returns (entries, concerns); entry.on_target is True/False, or None without a target.
    """
    entries = []
    concerns = []
    package = (
        ("postgresql-%s-<name> or the contrib package" % target_major) if target_major else "its package"
    )
    for ext in sorted(source_extensions, key=lambda item: item["name"]):
        entry = {
            "name": ext["name"],
            "version": ext.get("version"),
            "schema": ext.get("schema"),
            "on_target": None,
            "target_version": None,
        }
        entries.append(entry)
        if target_available is None:
            continue
        available = target_available.get(ext["name"])
        entry["on_target"] = available is not None
        if available is None:
            concerns.append(
                concern(
                    "extension_missing_on_target",
                    BLOCKER,
                    ext["name"],
                    "extension %s %s is installed in the source database but the target server cannot "
                    "install it (no control file)" % (ext["name"], ext.get("version")),
                    "install %s on the target host (%s), or DROP EXTENSION %s; on the source if unused"
                    % (ext["name"], package.replace("<name>", ext["name"]), quote_ident(ext["name"])),
                )
            )
            continue
        versions = list(available.get("versions") or [])
        entry["target_version"] = available.get("default_version")
        if ext.get("version") in versions:
            continue
        wanted = parse_version(ext.get("version"))
        parsed = [parse_version(version) for version in versions + [available.get("default_version")]]
        parsed = [version for version in parsed if version is not None]
        if wanted is not None and parsed and max(parsed) < wanted:
            concerns.append(
                concern(
                    "extension_version_older_on_target",
                    WARNING,
                    ext["name"],
                    "extension %s is %s on the source but the target offers at most %s: objects or "
                    "behaviour the application relies on may be missing there"
                    % (ext["name"], ext.get("version"), ".".join(str(part) for part in max(parsed))),
                    "install %s %s or later on the target host, or check the application against %s"
                    % (ext["name"], ext.get("version"), available.get("default_version")),
                )
            )
        elif wanted is None:
            concerns.append(
                concern(
                    "extension_version_unknown_on_target",
                    INFO,
                    ext["name"],
                    "extension %s is %s on the source; the target offers %s"
                    % (
                        ext["name"],
                        ext.get("version"),
                        ", ".join(versions) or available.get("default_version"),
                    ),
                    "check that the target's version of %s serves the application" % ext["name"],
                )
            )
    return entries, concerns


def compare_versions(source_version_num, target_version_num):
    """A target older (in major version) than the source is a blocker."""
    concerns = []
    if source_version_num is not None and source_version_num < MIN_SOURCE_VERSION:
        concerns.append(
            concern(
                "source_version_unsupported",
                BLOCKER,
                "source server_version_num",
                "the source runs PostgreSQL %s; logical replication needs 10 or later"
                % major_version(source_version_num),
                "upgrade the source to a supported major version first (pg_upgrade), "
                "or migrate it with pg_dump and a downtime window",
            )
        )
    if source_version_num is None or target_version_num is None:
        return concerns
    if int(target_version_num) // 10000 < int(source_version_num) // 10000:
        concerns.append(
            concern(
                "target_version_older",
                BLOCKER,
                "target server_version_num",
                "the target runs PostgreSQL %s (%s), older than the source's %s (%s): the schema dump "
                "and replication only go to the same or a newer major version"
                % (
                    major_version(target_version_num),
                    target_version_num,
                    major_version(source_version_num),
                    source_version_num,
                ),
                "use a target of PostgreSQL %s or newer" % major_version(source_version_num),
            )
        )
    return concerns


# --------------------------------------------------------------------------------------
# Classification: server settings, privileges, WAL
# --------------------------------------------------------------------------------------


def _restart_fix(setting, value):
    return "ALTER SYSTEM SET %s = %s; -- then restart PostgreSQL" % (setting, value)


def check_source_server(server):
    """wal_level, slots, senders, recovery, privileges and visibility of the source."""
    concerns = []
    if server.get("in_recovery"):
        concerns.append(
            concern(
                "source_in_recovery",
                BLOCKER,
                "source pg_is_in_recovery()",
                "the source is a standby (in recovery): publications can only be created on the primary",
                "point source at the primary server",
            )
        )
    wal_level = server.get("wal_level")
    if wal_level is not None and wal_level != "logical":
        concerns.append(
            concern(
                "wal_level",
                BLOCKER,
                "source wal_level",
                "wal_level is %s on the source; logical replication needs logical" % wal_level,
                _restart_fix("wal_level", "logical"),
            )
        )
    concerns.extend(
        _capacity(
            "max_replication_slots",
            "source max_replication_slots",
            server.get("max_replication_slots"),
            server.get("replication_slots_used"),
            "replication slots",
        )
    )
    concerns.extend(
        _capacity(
            "max_wal_senders",
            "source max_wal_senders",
            server.get("max_wal_senders"),
            server.get("wal_senders_used"),
            "WAL senders",
        )
    )
    user = server.get("user") or {}
    if user.get("name") and not user.get("superuser") and not user.get("replication"):
        concerns.append(
            concern(
                "source_replication_privilege",
                BLOCKER,
                "source role %s" % user["name"],
                "role %s is neither superuser nor has REPLICATION: it cannot create the migration's slot"
                % user["name"],
                "ALTER ROLE %s REPLICATION;" % quote_ident(user["name"]),
            )
        )
    if user.get("name") and not user.get("superuser"):
        concerns.append(
            concern(
                "source_superuser_missing",
                WARNING,
                "source role %s" % user["name"],
                "role %s is not a superuser: CREATE PUBLICATION ... FOR ALL TABLES, REPLICA IDENTITY changes "
                "on tables it does not own and reading every table need more than it has" % user["name"],
                "run the migration as a superuser, or GRANT pg_read_all_data TO %s; and make it the owner "
                "of the tables" % quote_ident(user["name"]),
            )
        )
        if not user.get("read_all_stats"):
            concerns.append(
                concern(
                    "limited_visibility",
                    INFO,
                    "source role %s" % user["name"],
                    "role %s is neither superuser nor member of pg_read_all_stats: transactions of other "
                    "roles are invisible to it, so long transactions may be missing from this report"
                    % user["name"],
                    "GRANT pg_read_all_stats TO %s;" % quote_ident(user["name"]),
                )
            )
    return concerns


def _capacity(concern_id, subject, maximum, used, what):
    if maximum is None or used is None:
        return []
    free = int(maximum) - int(used)
    if free >= COMFORTABLE_SOURCE_SLOTS:
        return []
    wanted = max(int(used) + COMFORTABLE_SOURCE_SLOTS, 10)
    if free < NEEDED_SOURCE_SLOTS:
        severity = BLOCKER
        why = "the migration needs at least %d free" % NEEDED_SOURCE_SLOTS
    else:
        severity = WARNING
        why = (
            "a native table-sync copy needs %d free (the slot plus two sync workers)"
            % COMFORTABLE_SOURCE_SLOTS
        )
    return [
        concern(
            concern_id,
            severity,
            subject,
            "%s is %s with %s in use (%d free); %s" % (concern_id, maximum, used, free, why),
            _restart_fix(concern_id, wanted),
        )
    ]


def check_wal(server, wal_rate, wal_budget_bytes=None):
    """max_slot_wal_keep_size against the WAL budget, and how long the budget lasts."""
    concerns = []
    keep = server.get("max_slot_wal_keep_size_bytes")
    budget_value = ("'%dMB'" % max(1, int(wal_budget_bytes) // (1024 * 1024))) if wal_budget_bytes else None
    if keep is not None and keep < 0:
        if wal_budget_bytes:
            concerns.append(
                concern(
                    "max_slot_wal_keep_size",
                    WARNING,
                    "source max_slot_wal_keep_size",
                    "max_slot_wal_keep_size is unlimited: a stalled migration slot keeps WAL until the "
                    "source's disk is full; the WAL budget is %s" % human_bytes(wal_budget_bytes),
                    "ALTER SYSTEM SET max_slot_wal_keep_size = %s; SELECT pg_reload_conf();" % budget_value,
                )
            )
        else:
            concerns.append(
                concern(
                    "max_slot_wal_keep_size",
                    INFO,
                    "source max_slot_wal_keep_size",
                    "max_slot_wal_keep_size is unlimited: a stalled migration slot keeps WAL until the "
                    "source's disk is full",
                    "give wal_budget_bytes (the WAL the source's disk can hold) and set "
                    "ALTER SYSTEM SET max_slot_wal_keep_size = '<budget>MB'; SELECT pg_reload_conf();",
                )
            )
    elif keep is not None and wal_budget_bytes and keep > wal_budget_bytes:
        concerns.append(
            concern(
                "max_slot_wal_keep_size",
                WARNING,
                "source max_slot_wal_keep_size",
                "max_slot_wal_keep_size (%s) is above the WAL budget (%s)"
                % (human_bytes(keep), human_bytes(wal_budget_bytes)),
                "ALTER SYSTEM SET max_slot_wal_keep_size = %s; SELECT pg_reload_conf();" % budget_value,
            )
        )
    if wal_budget_bytes and wal_rate is not None:
        lasts = (
            "about %s" % human_seconds(float(wal_budget_bytes) / float(wal_rate))
            if wal_rate > 0
            else "indefinitely at that rate"
        )
        concerns.append(
            concern(
                "wal_budget",
                INFO,
                "source WAL",
                "the source writes %s/s of WAL (sampled); a WAL budget of %s lasts %s: the initial "
                "copy and the catch-up must finish within it"
                % (human_bytes(wal_rate), human_bytes(wal_budget_bytes), lasts),
                "copy during a quiet period, or raise the budget (free disk under pg_wal) before starting",
            )
        )
    return concerns


def check_target_server(target, source):
    """What the target needs: wal_level (for the reverse path), workers, slots, senders, a superuser."""
    concerns = []
    if target.get("wal_level") is not None and target["wal_level"] != "logical":
        concerns.append(
            concern(
                "target_wal_level",
                BLOCKER,
                "target wal_level",
                "wal_level is %s on the target; the reverse replication that makes a rollback lossless "
                "publishes from the target and needs logical" % target["wal_level"],
                _restart_fix("wal_level", "logical"),
            )
        )
    workers = target.get("max_logical_replication_workers")
    sync = target.get("max_sync_workers_per_subscription") or 2
    if workers is not None and workers < 1 + sync:
        concerns.append(
            concern(
                "target_logical_replication_workers",
                BLOCKER if workers < 1 else WARNING,
                "target max_logical_replication_workers",
                "max_logical_replication_workers is %s on the target; the subscription needs 1 apply worker "
                "and up to %s table-sync workers" % (workers, sync),
                _restart_fix("max_logical_replication_workers", max(4, 1 + sync))
                + "; keep max_worker_processes above it",
            )
        )
    for setting, used_key in (
        ("max_replication_slots", "replication_slots_used"),
        ("max_wal_senders", "wal_senders_used"),
    ):
        maximum, used = target.get(setting), target.get(used_key)
        if maximum is not None and used is not None and int(maximum) - int(used) < 1:
            concerns.append(
                concern(
                    "target_" + setting,
                    BLOCKER,
                    "target " + setting,
                    "%s is %s on the target with %s in use; the reverse replication needs one free"
                    % (setting, maximum, used),
                    _restart_fix(setting, max(10, int(used) + 2)),
                )
            )
    user = target.get("user") or {}
    if user.get("name") and not user.get("superuser"):
        concerns.append(
            concern(
                "target_superuser_missing",
                BLOCKER,
                "target role %s" % user["name"],
                "role %s is not a superuser on the target: creating the database, roles, extensions and "
                "the subscription needs one" % user["name"],
                "connect to the target as a superuser (e.g. postgres)",
            )
        )
    if target.get("system_identifier") is not None and target.get("system_identifier") == source.get(
        "system_identifier"
    ):
        concerns.append(
            concern(
                "target_is_source",
                BLOCKER,
                "target",
                "target and source are the same PostgreSQL cluster (system identifier %s)"
                % target["system_identifier"],
                "point target at the new server",
            )
        )
    return concerns


# --------------------------------------------------------------------------------------
# Classification: encoding and collation
# --------------------------------------------------------------------------------------


def check_source_collation(server):
    """The source's own recorded collation version against the library's actual one."""
    recorded, actual = server.get("collation_version"), server.get("collation_actual_version")
    if recorded and actual and recorded != actual:
        database = server.get("database")
        return [
            concern(
                "collation_version_mismatch",
                WARNING,
                "source database %s" % database,
                "the source database %s was created with collation version %s but the server's library "
                "now provides %s: text indexes on the source may be out of order"
                % (database, recorded, actual),
                "REINDEX DATABASE %s; ALTER DATABASE %s REFRESH COLLATION VERSION; -- on the source, "
                "in a maintenance window" % (quote_ident(database), quote_ident(database)),
            )
        ]
    return []


def compare_locale(source, target):
    """Encoding, lc_collate/lc_ctype, provider and library version: source database against the
    target's database of the same name when it exists, else against what CREATE DATABASE gives
    there by default (template1)."""
    concerns = []
    database = source.get("database")
    existing = target.get("same_name_database")
    reference = existing or target.get("template_database") or {}
    if not reference:
        return concerns
    where = (
        ("the target's existing database %s" % database) if existing else "the target's default (template1)"
    )
    create = "CREATE DATABASE %s TEMPLATE template0 ENCODING %s LOCALE_PROVIDER %s LOCALE %s%s;" % (
        quote_ident(database),
        quote_literal(source.get("encoding")),
        source.get("collation_provider") or "libc",
        quote_literal(source.get("lc_collate")),
        (" %s_LOCALE %s" % (source["collation_provider"].upper(), quote_literal(source["locale"])))
        if source.get("collation_provider") in ("icu", "builtin") and source.get("locale")
        else "",
    )
    if source.get("encoding") and reference.get("encoding") and source["encoding"] != reference["encoding"]:
        concerns.append(
            concern(
                "encoding_mismatch",
                BLOCKER if existing else WARNING,
                "target encoding",
                "the source database is %s, %s is %s" % (source["encoding"], where, reference["encoding"]),
                (
                    "DROP DATABASE %s; -- on the target, if it is a leftover; then " % quote_ident(database)
                    if existing
                    else ""
                )
                + create,
            )
        )
    if (source.get("lc_collate"), source.get("lc_ctype")) != (
        reference.get("lc_collate"),
        reference.get("lc_ctype"),
    ):
        concerns.append(
            concern(
                "collation_mismatch",
                WARNING,
                "target lc_collate/lc_ctype",
                "the source database sorts and classifies text with lc_collate %s, lc_ctype %s; "
                "%s uses %s, %s: "
                "ORDER BY on text and case rules would change"
                % (
                    source.get("lc_collate"),
                    source.get("lc_ctype"),
                    where,
                    reference.get("lc_collate"),
                    reference.get("lc_ctype"),
                ),
                create,
            )
        )
    source_provider = source.get("collation_provider")
    target_provider = reference.get("collation_provider")
    if source_provider and target_provider and source_provider != target_provider:
        concerns.append(
            concern(
                "collation_provider",
                WARNING,
                "target collation provider",
                "the source database uses the %s collation provider%s, %s uses %s: text sort order may differ"
                % (
                    source_provider,
                    (" (locale %s)" % source["locale"]) if source.get("locale") else "",
                    where,
                    target_provider,
                ),
                create,
            )
        )
    locales = target.get("locales")
    wanted = source.get("lc_collate")
    if (
        locales is not None
        and wanted
        and (source_provider or "libc") == "libc"
        and _normalize_locale(wanted) not in ("c", "posix")
        and _normalize_locale(wanted) not in set(_normalize_locale(name) for name in locales)
    ):
        concerns.append(
            concern(
                "locale_missing_on_target",
                WARNING,
                "target locale %s" % wanted,
                "the source's locale %s is not among the target server's known locales (pg_collation)"
                % wanted,
                "install the locale on the target host (e.g. Debian locales-all, or locale-gen %s) "
                "and restart PostgreSQL there" % wanted,
            )
        )
    source_library = source.get("collation_actual_version") or source.get("collation_version")
    target_library = reference.get("collation_actual_version") or reference.get("collation_version")
    if (
        source_library
        and target_library
        and source_library != target_library
        and source_provider == target_provider
    ):
        concerns.append(
            concern(
                "collation_version_differs",
                INFO,
                "collation library version",
                "the %s collation library is version %s on the source and %s on the target: the logical copy "
                "rebuilds every index on the target, so no index is corrupted, but a few strings may sort "
                "differently" % (source_provider or "libc", source_library, target_library),
                "none needed for the migration; compare ORDER BY results of key reports if they matter",
            )
        )
    return concerns


def check_tenancy(collisions):
    """Names this instance needs on a shared target that another instance holds."""
    return [
        concern(
            "tenant_collision",
            BLOCKER,
            "target %s %s" % (item["kind"], item["name"]),
            item["problem"],
            item["fix"],
        )
        for item in collisions or []
    ]


def check_target_database(source, target):
    """The source database's name already taken on the target."""
    existing = target.get("same_name_database")
    if not existing or target.get("tenant_collisions") is not None:
        # Named instance: its own earlier copy is no concern, anybody else's is a collision.
        return []
    database = source.get("database")
    tables = existing.get("user_tables")
    holds = ("holds %s" % counted(tables, "table")) if tables is not None else "its content was not inspected"
    return [
        concern(
            "target_database_exists",
            WARNING,
            "target database %s" % database,
            "a database named %s already exists on the target (%s); the migration creates it"
            % (database, holds),
            "DROP DATABASE %s; -- on the target, only if it is a leftover of an earlier attempt"
            % quote_ident(database),
        )
    ]


# --------------------------------------------------------------------------------------
# Classification: activity, slots, publications, other objects
# --------------------------------------------------------------------------------------


def check_activity(long_transactions, prepared_transactions, threshold_seconds):
    concerns = []
    for row in long_transactions:
        subject = "pid %s (%s@%s)" % (row.get("pid"), row.get("user"), row.get("database"))
        concerns.append(
            concern(
                "long_transaction",
                WARNING,
                subject,
                "a transaction has been open for %s (over %d s, state %s, application %s): creating the "
                "migration's slot waits until every running transaction has ended, and it holds back vacuum"
                % (
                    human_seconds(row.get("age_seconds") or 0),
                    threshold_seconds,
                    row.get("state"),
                    row.get("application_name") or "-",
                ),
                "let it finish, or end it: SELECT pg_terminate_backend(%s);" % row.get("pid"),
            )
        )
    for row in prepared_transactions:
        gid = row.get("gid")
        concerns.append(
            concern(
                "prepared_transaction",
                BLOCKER,
                "prepared transaction %s" % gid,
                "prepared transaction %s (owner %s, database %s) has been waiting for %s: creating a logical "
                "slot waits for it to be committed or rolled back"
                % (gid, row.get("owner"), row.get("database"), human_seconds(row.get("age_seconds") or 0)),
                "COMMIT PREPARED %s; or ROLLBACK PREPARED %s; "
                "-- in database %s, once its coordinator is known"
                % (quote_literal(gid), quote_literal(gid), row.get("database")),
            )
        )
    return concerns


def check_slots(slots):
    concerns = []
    for slot in slots:
        if slot.get("active") or slot.get("temporary"):
            continue
        lost = slot.get("wal_status") == "lost"
        concerns.append(
            concern(
                "inactive_slot",
                WARNING,
                "slot %s" % slot.get("slot_name"),
                "%s slot %s is inactive and %s"
                % (
                    slot.get("slot_type"),
                    slot.get("slot_name"),
                    "has lost the WAL it needed (wal_status lost)"
                    if lost
                    else "keeps %s of WAL on the source" % human_bytes(slot.get("retained_bytes")),
                ),
                "SELECT pg_drop_replication_slot(%s); -- only if nothing consumes it any more"
                % quote_literal(slot.get("slot_name")),
            )
        )
    return concerns


def check_publications(publications, subscriptions):
    concerns = []
    for publication in publications:
        concerns.append(
            concern(
                "existing_publication",
                INFO,
                "publication %s" % publication["name"],
                "publication %s already exists on the source (%s)"
                % (
                    publication["name"],
                    "all tables"
                    if publication.get("all_tables")
                    else counted(publication.get("tables") or 0, "table"),
                ),
                "none needed if something else uses it; the migration creates a publication of its own",
            )
        )
    for subscription in subscriptions or []:
        concerns.append(
            concern(
                "existing_subscription",
                INFO,
                "subscription %s" % subscription["name"],
                "the source database itself subscribes (%s, %s): rows it receives are published "
                "onwards like local writes"
                % (subscription["name"], "enabled" if subscription.get("enabled") else "disabled"),
                "decide whether that subscription moves to the target at cutover",
            )
        )
    return concerns


def check_objects(objects, large_objects):
    """Large objects, materialized views, foreign tables, event triggers."""
    concerns = []
    if large_objects:
        concerns.append(
            concern(
                "large_objects",
                WARNING,
                counted(large_objects, "large object"),
                "the source database holds %s (%s in pg_largeobject); logical replication "
                "does not carry them"
                % (counted(large_objects, "large object"), human_bytes(objects.get("large_object_bytes"))),
                "nothing to do: pg_logical_migration copies them (content, owner, grants) under the slot's "
                "snapshot, pg_cutover copies their changes inside the fence (its large_objects step, which "
                "grows with their total size) and pg_compare checks each one",
            )
        )
    matviews = objects.get("materialized_views") or []
    if matviews:
        concerns.append(
            concern(
                "materialized_views",
                INFO,
                counted(len(matviews), "materialized view"),
                "materialized views %s are not replicated" % _name_list(matviews),
                "nothing to do: pg_logical_migration populates them on the target after the copy and "
                "pg_cutover refreshes them on the new side right after the switch (%s)"
                % "; ".join("REFRESH MATERIALIZED VIEW %s" % name for name in matviews[:LISTED_NAMES]),
            )
        )
    foreign = objects.get("foreign_tables") or []
    if foreign:
        concerns.append(
            concern(
                "foreign_tables",
                WARNING,
                counted(len(foreign), "foreign table"),
                "foreign tables %s cannot be published: their data stays on the remote server, which the "
                "target must reach the same way" % _name_list(foreign),
                "recreate the foreign servers and user mappings on the target and check it reaches them",
            )
        )
    event_triggers = objects.get("event_triggers") or []
    if event_triggers:
        concerns.append(
            concern(
                "event_triggers",
                INFO,
                counted(len(event_triggers), "event trigger"),
                "event triggers %s fire on DDL: on the source during the migration, and on the target when "
                "the schema is restored if they are restored first" % _name_list(event_triggers),
                "check that they tolerate the migration's DDL",
            )
        )
    return concerns


def check_schema_options(refused):
    """Column options and storage parameters of the source that the target refuses."""
    concerns = []
    for item in refused or []:
        concerns.append(
            concern(
                "schema_option_refused",
                WARNING,
                "%s option %s" % (item["scope"], item["option"]),
                "the target refuses the %s option %s (%s), set on %s of the source (%s)"
                % (
                    item["scope"],
                    item["option"],
                    item["error"],
                    counted(item["objects"], "object"),
                    _name_list(item["examples"]),
                ),
                "pg_logical_migration leaves it out on the target and reports each one "
                "(schema_option_policy=drop, the default); with schema_option_policy=refuse it stops before "
                "changing anything. To keep it, remove it on the source (ALTER TABLE ... RESET (%s)) or "
                "install on the target what defines it" % item["option"],
            )
        )
    return concerns


# --------------------------------------------------------------------------------------
# Collection (SQL, read-only)
# --------------------------------------------------------------------------------------

_USER_SCHEMAS = USER_SCHEMAS

SETTINGS = (
    "wal_level",
    "max_replication_slots",
    "max_wal_senders",
    "max_slot_wal_keep_size",
    "max_logical_replication_workers",
    "max_sync_workers_per_subscription",
    "max_worker_processes",
    "max_active_replication_origins",
)


def _one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()


def _all(conn, sql, params=None):
    return conn.execute(sql, params).fetchall()


def _optional(conn, sql, params=None, default=None):
    """Run a query that this role may not be allowed to; its error is undone by a savepoint."""
    try:
        with conn.transaction():
            return conn.execute(sql, params).fetchall()
    except _pg.psycopg.Error:
        return default


def _setting_value(row):
    value = row["setting"]
    if row.get("vartype") == "integer":
        value = int(value)
    return value


def collect_server(conn):
    """Version, database, locale, settings, replication use and the login's privileges."""
    base = _one(
        conn,
        "SELECT current_setting('server_version_num')::int AS version_num, version() AS version, "
        "current_setting('server_version') AS version_short, current_database() AS database, "
        "pg_is_in_recovery() AS in_recovery",
    )
    version_num = base["version_num"]
    if version_num >= 170000:
        locale_columns = "d.datlocprovider::text AS provider, d.datlocale AS locale, d.datcollversion"
    elif version_num >= 150000:
        locale_columns = "d.datlocprovider::text AS provider, d.daticulocale AS locale, d.datcollversion"
    else:
        locale_columns = "NULL::text AS provider, NULL::text AS locale, NULL::text AS datcollversion"
    database = _one(
        conn,
        "SELECT d.oid::bigint AS oid, pg_encoding_to_char(d.encoding) AS encoding, d.datcollate, d.datctype, "
        + locale_columns
        + ", pg_database_size(d.oid)::bigint AS bytes "
        "FROM pg_database d WHERE d.datname = current_database()",
    )
    actual = None
    if version_num >= 150000:
        rows = _optional(
            conn, "SELECT pg_database_collation_actual_version(%s::oid) AS v", (database["oid"],)
        )
        actual = rows[0]["v"] if rows else None
    settings = dict(
        (row["name"], _setting_value(row))
        for row in _all(
            conn,
            "SELECT name, setting, vartype, unit FROM pg_settings WHERE name = ANY(%s)",
            (list(SETTINGS),),
        )
    )
    user = _one(
        conn,
        "SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolreplication AS replication, "
        "r.rolcreatedb AS createdb, "
        + (
            "pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"
            if version_num >= MIN_SOURCE_VERSION
            else "false"
        )
        + " AS read_all_stats FROM pg_roles r WHERE r.rolname = current_user",
    )
    slots_used = _one(conn, "SELECT count(*)::int AS n FROM pg_replication_slots")["n"]
    senders_used = _one(conn, "SELECT count(*)::int AS n FROM pg_stat_replication")["n"]
    identifier = _optional(conn, "SELECT system_identifier::text AS id FROM pg_control_system()")
    keep = settings.get("max_slot_wal_keep_size")
    provider = {"c": "libc", "i": "icu", "b": "builtin"}.get(
        database.get("provider"), database.get("provider")
    )
    return {
        "version_num": version_num,
        "version": base["version"],
        "version_short": base["version_short"],
        "database": base["database"],
        "in_recovery": base["in_recovery"],
        "encoding": database["encoding"],
        "lc_collate": database["datcollate"],
        "lc_ctype": database["datctype"],
        "collation_provider": provider or ("libc" if version_num < 150000 else None),
        "locale": database.get("locale"),
        "collation_version": database.get("datcollversion"),
        "collation_actual_version": actual,
        "database_bytes": database["bytes"],
        "wal_level": settings.get("wal_level"),
        "max_replication_slots": settings.get("max_replication_slots"),
        "max_wal_senders": settings.get("max_wal_senders"),
        "max_slot_wal_keep_size": None if keep is None else ("-1" if keep < 0 else "%dMB" % keep),
        "max_slot_wal_keep_size_bytes": None if keep is None else (keep if keep < 0 else keep * 1024 * 1024),
        "max_logical_replication_workers": settings.get("max_logical_replication_workers"),
        "max_sync_workers_per_subscription": settings.get("max_sync_workers_per_subscription"),
        "max_worker_processes": settings.get("max_worker_processes"),
        "replication_slots_used": slots_used,
        "wal_senders_used": senders_used,
        "system_identifier": identifier[0]["id"] if identifier else None,
        "user": {
            "name": user["name"],
            "superuser": user["superuser"],
            "replication": user["replication"],
            "createdb": user["createdb"],
            "read_all_stats": user["superuser"] or user["read_all_stats"],
        },
    }


def collect_sequences(conn):
    sequences = _all(
        conn,
        "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name, "
        "format('%I.%I', n.nspname, c.relname) AS qualified, format_type(s.seqtypid, NULL) AS data_type, "
        "s.seqincrement AS increment, s.seqmin AS min_value, s.seqmax AS max_value, s.seqcycle AS cycle, "
        "CASE WHEN t.oid IS NULL THEN NULL ELSE tn.nspname || '.' || t.relname || '.' || a.attname END "
        "AS owned_by, has_sequence_privilege(c.oid, 'SELECT') AS readable "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_sequence s ON s.seqrelid = c.oid "
        "LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid "
        "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 "
        "LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        "WHERE c.relkind = 'S' AND " + _USER_SCHEMAS + " ORDER BY n.nspname, c.relname",
    )
    readable = [row for row in sequences if row["readable"]]
    values = {}
    for start in range(0, len(readable), SEQUENCE_BATCH):
        batch = readable[start : start + SEQUENCE_BATCH]
        query = _pg.psycopg.sql.SQL(" UNION ALL ").join(
            _pg.psycopg.sql.SQL("SELECT {}::bigint AS oid, last_value, is_called FROM {}.{}").format(
                _pg.psycopg.sql.Literal(row["oid"]),
                _pg.psycopg.sql.Identifier(row["schema"]),
                _pg.psycopg.sql.Identifier(row["name"]),
            )
            for row in batch
        )
        for row in conn.execute(query).fetchall():
            values[row["oid"]] = row
    for row in sequences:
        value = values.get(row["oid"]) or {}
        row["last_value"] = value.get("last_value")
        row["is_called"] = value.get("is_called")
    return sequences


def collect_extensions(conn):
    return _all(
        conn,
        "SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema "
        "FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname",
    )


def collect_available_extensions(conn):
    available = {}
    for row in _all(conn, "SELECT name, default_version FROM pg_available_extensions"):
        available[row["name"]] = {"default_version": row["default_version"], "versions": []}
    for row in _all(conn, "SELECT name, version FROM pg_available_extension_versions ORDER BY name, version"):
        available.setdefault(row["name"], {"default_version": None, "versions": []})["versions"].append(
            row["version"]
        )
    return available


def collect_slots(conn, version_num):
    extra = "wal_status" if version_num >= 130000 else "NULL::text AS wal_status"
    return _all(
        conn,
        "SELECT slot_name::text, plugin::text, slot_type, database::text, temporary, active, active_pid, "
        + extra
        + ", restart_lsn::text, confirmed_flush_lsn::text, "
        "CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL "
        "ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END AS retained_bytes "
        "FROM pg_replication_slots ORDER BY slot_name",
    )


def collect_publications(conn, version_num):
    truncate = "p.pubtruncate" if version_num >= 110000 else "false"
    return _all(
        conn,
        "SELECT p.pubname::text AS name, p.puballtables AS all_tables, p.pubinsert AS insert, "
        "p.pubupdate AS update, p.pubdelete AS delete, " + truncate + " AS truncate, "
        "(SELECT count(*) FROM pg_publication_tables t WHERE t.pubname = p.pubname)::int AS tables "
        "FROM pg_publication p ORDER BY p.pubname",
    )


def collect_subscriptions(conn):
    """Subscriptions of the current database, or None when this role may not see them."""
    return _optional(
        conn,
        "SELECT s.subname::text AS name, s.subenabled AS enabled, s.subslotname::text AS slot_name "
        "FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
        "WHERE d.datname = current_database() ORDER BY s.subname",
    )


def collect_long_transactions(conn, threshold_seconds):
    return _all(
        conn,
        "SELECT pid, usename::text AS user, datname::text AS database, application_name, "
        "client_addr::text AS client_addr, state, "
        "to_char(xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS xact_start, "
        "extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age_seconds, "
        "left(query, %s) AS query "
        "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
        "AND xact_start < clock_timestamp() - make_interval(secs => %s) ORDER BY xact_start",
        (QUERY_TEXT_CHARS, float(threshold_seconds)),
    )


def collect_prepared_transactions(conn):
    return _all(
        conn,
        "SELECT gid, owner::text AS owner, database::text AS database, "
        "to_char(prepared AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS prepared, "
        "extract(epoch FROM clock_timestamp() - prepared)::float8 AS age_seconds "
        "FROM pg_prepared_xacts ORDER BY prepared",
    )


def collect_objects(conn):
    def names(sql):
        return [row["name"] for row in _all(conn, sql)]

    return {
        "large_objects": _one(conn, "SELECT count(*)::bigint AS n FROM pg_largeobject_metadata")["n"],
        "large_object_bytes": _one(conn, "SELECT pg_total_relation_size('pg_largeobject')::bigint AS n")["n"],
        "materialized_views": names(
            "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND "
            + _USER_SCHEMAS
            + " ORDER BY 1"
        ),
        "foreign_tables": names(
            "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'f' ORDER BY 1"
        ),
        "event_triggers": names("SELECT evtname::text AS name FROM pg_event_trigger ORDER BY 1"),
    }


def collect_target_databases(conn, source_database):
    """template1 and the database named like the source's, on the target."""
    version_num = _one(conn, "SELECT current_setting('server_version_num')::int AS v")["v"]
    if version_num >= 170000:
        extra = "d.datlocprovider::text AS provider, d.datlocale AS locale, d.datcollversion"
    elif version_num >= 150000:
        extra = "d.datlocprovider::text AS provider, d.daticulocale AS locale, d.datcollversion"
    else:
        extra = "'c'::text AS provider, NULL::text AS locale, NULL::text AS datcollversion"
    rows = _all(
        conn,
        "SELECT d.datname::text AS name, pg_encoding_to_char(d.encoding) AS encoding, "
        "d.datcollate AS lc_collate, "
        "d.datctype AS lc_ctype, " + extra + " FROM pg_database d WHERE d.datname IN ('template1', %s)",
        (source_database,),
    )
    found = {}
    for row in rows:
        found[row["name"]] = {
            "name": row["name"],
            "encoding": row["encoding"],
            "lc_collate": row["lc_collate"],
            "lc_ctype": row["lc_ctype"],
            "collation_provider": {"c": "libc", "i": "icu", "b": "builtin"}.get(
                row["provider"], row["provider"]
            ),
            "locale": row["locale"],
            "collation_version": row["datcollversion"],
        }
    same = found.get(source_database) if source_database != "template1" else None
    if same is not None:
        same["user_tables"] = None
        if _one(conn, "SELECT current_database() AS d")["d"] == source_database:
            same["user_tables"] = count_user_tables(conn)
    return found.get("template1"), same


def collect_roles(conn):
    """The roles the database uses (owners, grantees and their direct members), with their login."""
    return _all(
        conn,
        "SELECT r.rolname::text AS name, r.rolcanlogin AS can_login FROM pg_roles r"
        " WHERE r.rolname IN (" + DATABASE_ROLES_SQL + ") ORDER BY 1",
    )


def count_user_tables(conn):
    return _one(
        conn,
        "SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND " + _USER_SCHEMAS,
    )["n"]


def collect_locales(conn):
    return [
        row["name"]
        for row in _all(
            conn,
            "SELECT DISTINCT collcollate AS name FROM pg_collation "
            "WHERE collprovider = 'c' AND collcollate IS NOT NULL",
        )
    ]


def sample_wal_rate(conn, seconds, sleep=time.sleep, clock=time.monotonic):
    """Bytes of WAL per second, from pg_current_wal_lsn() read twice `seconds` apart."""
    if not seconds or seconds <= 0:
        return None
    first = _one(conn, "SELECT pg_current_wal_lsn()::text AS lsn")["lsn"]
    started = clock()
    sleep(seconds)
    second = _one(conn, "SELECT pg_current_wal_lsn()::text AS lsn")["lsn"]
    elapsed = clock() - started
    delta = _one(conn, "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)::float8 AS bytes", (second, first))[
        "bytes"
    ]
    return round(delta / elapsed, 1) if elapsed > 0 else None


# --------------------------------------------------------------------------------------
# The preflight
# --------------------------------------------------------------------------------------

_SERVER_KEYS = (
    "version_num",
    "version",
    "version_short",
    "database",
    "in_recovery",
    "encoding",
    "lc_collate",
    "lc_ctype",
    "collation_provider",
    "locale",
    "collation_version",
    "collation_actual_version",
    "database_bytes",
    "wal_level",
    "max_replication_slots",
    "max_wal_senders",
    "max_slot_wal_keep_size",
    "max_logical_replication_workers",
    "max_sync_workers_per_subscription",
    "max_worker_processes",
    "replication_slots_used",
    "wal_senders_used",
    "user",
)


def _server_view(server):
    return dict((key, server.get(key)) for key in _SERVER_KEYS)


def _open(endpoint, connect):
    conn = connect(endpoint, application_name=APPLICATION_NAME)
    conn.isolation_level = _pg.psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


def read_source(conn, long_transaction_seconds):
    """Everything the preflight reads from the source, in one REPEATABLE READ READ ONLY transaction."""
    steps = {}
    with conn.transaction():
        steps["server"] = server = collect_server(conn)
        if server["version_num"] < MIN_SOURCE_VERSION:
            return steps
        steps["tables"] = collect_tables(conn)
        steps["indexes"] = collect_unique_indexes(conn, server["version_num"])
        steps["sequences"] = collect_sequences(conn)
        steps["extensions"] = collect_extensions(conn)
        steps["objects"] = collect_objects(conn)
        steps["roles"] = collect_roles(conn)
        steps["schema_options"] = _schema_options.collect_source_options(conn)
        steps["slots"] = collect_slots(conn, server["version_num"])
        steps["publications"] = collect_publications(conn, server["version_num"])
        steps["subscriptions"] = collect_subscriptions(conn)
        steps["long_transactions"] = collect_long_transactions(conn, long_transaction_seconds)
        steps["prepared_transactions"] = collect_prepared_transactions(conn)
    return steps


def read_target(conn, source_database, tenancy=None):
    """The target's catalogs; tenancy: {instance, role_map, roles} to look for names another
    instance holds there."""
    with conn.transaction():
        target = collect_server(conn)
        target["available_extensions"] = collect_available_extensions(conn)
        target["template_database"], target["same_name_database"] = collect_target_databases(
            conn, source_database
        )
        target["locales"] = collect_locales(conn)
        if tenancy:
            role_map = tenancy["role_map"]
            names = [_tenancy.renamed(role, role_map) for role in tenancy["roles"]]
            target["tenant_collisions"] = _tenancy.collisions(
                conn,
                tenancy["instance"],
                [source_database],
                names,
                dict((_tenancy.renamed(role, role_map), role) for role in tenancy["roles"]),
            )
    return target


def classify(source_read, target=None, wal_rate=None, options=None):
    """All concerns and the module's result from what was read. Pure: no server needed."""
    options = options or {}
    policy = options.get("replica_identity_policy", POLICY_REFUSE)
    threshold = options.get("long_transaction_seconds", 300)
    budget = options.get("wal_budget_bytes")
    server = source_read["server"]
    concerns = []
    concerns.extend(compare_versions(server["version_num"], target["version_num"] if target else None))
    concerns.extend(check_source_server(server))
    tables, table_concerns = classify_tables(
        source_read.get("tables", []), source_read.get("indexes", []), policy
    )
    concerns.extend(table_concerns)
    sequences = source_read.get("sequences", [])
    concerns.extend(classify_sequences(sequences))
    extensions, extension_concerns = compare_extensions(
        source_read.get("extensions", []),
        target["available_extensions"] if target else None,
        major_version(target["version_num"]) if target else None,
    )
    concerns.extend(extension_concerns)
    objects = source_read.get("objects") or {}
    large_objects = objects.get("large_objects", 0)
    concerns.extend(check_objects(objects, large_objects))
    concerns.extend(check_source_collation(server))
    concerns.extend(check_slots(source_read.get("slots", [])))
    concerns.extend(check_publications(source_read.get("publications", []), source_read.get("subscriptions")))
    concerns.extend(
        check_activity(
            source_read.get("long_transactions", []), source_read.get("prepared_transactions", []), threshold
        )
    )
    concerns.extend(check_wal(server, wal_rate, budget))
    target_view = None
    if target is not None:
        concerns.extend(check_target_server(target, server))
        concerns.extend(check_target_database(server, target))
        concerns.extend(compare_locale(server, target))
        concerns.extend(check_schema_options(target.get("schema_options_refused")))
        concerns.extend(check_tenancy(target.get("tenant_collisions")))
        target_view = _server_view(target)
        target_view["database_exists"] = target.get("same_name_database") is not None
    concerns = sort_concerns(concerns)
    summary = summarize(concerns)
    summary.update(
        tables=len(tables),
        sequences=len(sequences),
        standalone_sequences=len([row for row in sequences if not row.get("owned_by")]),
        database_bytes=server.get("database_bytes"),
    )
    return {
        "server": _server_view(server),
        "target": target_view,
        "tables": tables,
        "sequences": [sequence_entry(row) for row in sequences],
        "extensions": extensions,
        "large_objects": large_objects,
        "roles": [
            dict(row, target_name=_tenancy.renamed(row["name"], options.get("role_map") or {}))
            for row in source_read.get("roles", [])
        ],
        "target_roles": options.get("role_map"),
        "schema_options_refused": target.get("schema_options_refused", []) if target else None,
        "slots": source_read.get("slots", []),
        "publications": source_read.get("publications", []),
        "subscriptions": source_read.get("subscriptions"),
        "long_transactions": source_read.get("long_transactions", []),
        "prepared_transactions": source_read.get("prepared_transactions", []),
        "wal_rate_bytes_per_second": wal_rate,
        "concerns": concerns,
        "summary": summary,
    }


def run_preflight(
    source,
    target=None,
    wal_sample_seconds=3.0,
    long_transaction_seconds=300,
    wal_budget_bytes=None,
    replica_identity_policy=POLICY_REFUSE,
    connect=None,
    sleep=time.sleep,
    instance=None,
    application_role=None,
    role_map=None,
):
    """Read source (and target) and classify. source, target: _pg.PgEndpoint.

    instance: the instance the database belongs to; its roles are named on the target by
    role_map (None: the default rule of _tenancy.default_role_map for application_role), and
    names another instance holds on the target are blockers.

    Raises _pg.PgConnectError / _pg.PgError with messages that carry no password.
    """
    connect = connect or _pg.connect
    conn = _open(source, connect)
    try:
        source_read = _guarded(source, "the source catalogs", read_source, conn, long_transaction_seconds)
        wal_rate = None
        if (
            not source_read["server"]["in_recovery"]
            and source_read["server"]["version_num"] >= MIN_SOURCE_VERSION
        ):
            wal_rate = _guarded(source, "the WAL rate", sample_wal_rate, conn, wal_sample_seconds, sleep)
    finally:
        conn.close()
    if instance and role_map is None:
        role_map = _tenancy.default_role_map(instance, application_role, source_read.get("roles", []))
    tenancy = None
    if instance:
        roles = _tenancy.claimable([r["name"] for r in source_read.get("roles", [])], source.user)
        tenancy = dict(instance=instance, role_map=role_map, roles=roles)
    target_read = None
    if target is not None:
        conn = _open(target, connect)
        try:
            target_read = _guarded(target, "the target catalogs", read_target, conn, source.database, tenancy)
        finally:
            conn.close()
        _count_existing_target_tables(target, source.database, target_read, connect)
        target_read["schema_options_refused"] = _probe_schema_options(
            target, source_read.get("schema_options") or [], connect
        )
    return classify(
        source_read,
        target_read,
        wal_rate,
        {
            "replica_identity_policy": replica_identity_policy,
            "long_transaction_seconds": long_transaction_seconds,
            "wal_budget_bytes": wal_budget_bytes,
            "role_map": role_map if instance else None,
        },
    )


def _count_existing_target_tables(target, database, target_read, connect):
    """Look into the target database named like the source's, when it exists; best effort."""
    same = target_read.get("same_name_database")
    if same is None or same.get("user_tables") is not None:
        return
    try:
        conn = _open(target.with_database(database), connect)
    except _pg.PgError:
        return
    try:
        with conn.transaction():
            same["user_tables"] = count_user_tables(conn)
    except _pg.psycopg.Error:
        pass
    finally:
        conn.close()


def _probe_schema_options(target, entries, connect):
    """Try the source's options on the target, in a transaction that is rolled back."""
    probes = _schema_options.distinct_probes(entries)
    if not probes:
        return []
    conn = _open(target, connect)
    # The tries create temporary objects, so this transaction may write; it is always rolled back.
    conn.read_only = False
    try:
        refused = _guarded(
            target, "which schema options it accepts", _schema_options.probe_target, conn, probes
        )
    finally:
        conn.close()
    return _schema_options.refused_entries(entries, refused)


def _guarded(endpoint, step, function, *args):
    try:
        return function(*args)
    except _pg.psycopg.Error as error:
        raise _pg.PgError(_pg.query_failure_message(endpoint, step, error)) from None
