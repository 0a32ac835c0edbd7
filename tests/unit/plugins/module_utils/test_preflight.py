"""Classification of the preflight, without a server: row dicts in, concerns out."""

from pathlib import Path

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import preflight as pf


def table(name, *, schema="public", replident="d", persistence="p", kind="r", oid=None, **extra):
    row = {
        "oid": oid or abs(hash(name)) % 100000,
        "schema": schema,
        "name": name,
        "relkind": kind,
        "relpersistence": persistence,
        "relreplident": replident,
        "bytes": 8192,
        "rows_estimate": 10,
    }
    row.update(extra)
    return row


def index(
    name, columns, primary=False, *, partial=False, deferrable=False, valid=True, replident=False, **extra
):
    row = {
        "name": name,
        "is_primary": primary,
        "is_unique": True,
        "is_partial": partial,
        "is_deferrable": deferrable,
        "is_valid": valid,
        "is_replident": replident,
        "has_expressions": False,
        "constraint_name": extra.pop("constraint_name", None),
        "columns": [{"name": column, "not_null": not_null} for column, not_null in columns],
    }
    row.update(extra)
    return row


def ids(concerns):
    return [(item["id"], item["severity"]) for item in concerns]


M2M = [("document_id", True), ("partner_id", True)]


# --- replica identity -------------------------------------------------------------------


def test_a_table_with_a_primary_key_produces_no_concern():
    entry, concerns = pf.classify_table(
        table("res_partner"), [index("res_partner_pkey", [("id", True)], True)]
    )
    assert entry["replica_identity"] == "primary_key"
    assert entry["replica_identity_index"] is None
    assert concerns == []


def test_an_odoo_m2m_table_with_a_usable_unique_index_gets_using_index():
    entry, concerns = pf.classify_table(
        table("lab_document_partner_rel"), [index("lab_document_partner_rel_uniq", M2M)]
    )
    assert entry["replica_identity"] == "unique_index"
    assert entry["replica_identity_index"] == "lab_document_partner_rel_uniq"
    assert entry["replica_identity_setting"] == "default"
    assert ids(concerns) == [("replica_identity_index", "warning")]
    assert concerns[0]["subject"] == "public.lab_document_partner_rel"
    assert concerns[0]["fix"] == (
        "ALTER TABLE public.lab_document_partner_rel "
        "REPLICA IDENTITY USING INDEX lab_document_partner_rel_uniq;"
    )


@pytest.mark.parametrize(
    "unusable, reason",
    [
        (index("t_uniq", [("a", False), ("b", True)]), "nullable column a"),
        (index("t_uniq", M2M, partial=True), "partial"),
        (index("t_uniq", M2M, deferrable=True), "deferrable"),
        (index("t_uniq", M2M, valid=False), "invalid"),
        (index("t_uniq", [("a", True), (None, False)]), "expression"),
        (index("t_uniq", M2M, has_expressions=True), "expression"),
        (index("t_uniq", M2M, is_unique=False), "not unique"),
    ],
)
def test_an_unusable_unique_index_counts_as_none(unusable, reason):
    assert any(reason in problem for problem in pf.index_problems(unusable))
    entry, concerns = pf.classify_table(table("t"), [unusable])
    assert entry["replica_identity"] == "none"
    assert ids(concerns) == [("replica_identity_missing", "blocker")]
    assert "t_uniq" in concerns[0]["message"]


def test_a_usable_index_has_no_problems():
    assert pf.index_problems(index("t_uniq", M2M)) == []


def test_a_table_with_neither_is_a_blocker_under_refuse_and_a_warning_under_full():
    entry, refused = pf.classify_table(table("lab_audit_log"), [], "refuse")
    assert entry["replica_identity"] == "none"
    assert ids(refused) == [("replica_identity_missing", "blocker")]
    assert "ADD PRIMARY KEY" in refused[0]["fix"]
    assert "UPDATE and DELETE on it fail on the source" in refused[0]["message"]
    entry, accepted = pf.classify_table(table("lab_audit_log"), [], "full")
    assert entry["replica_identity"] == "none"
    assert ids(accepted) == [("replica_identity_missing", "warning")]
    assert accepted[0]["fix"] == "ALTER TABLE public.lab_audit_log REPLICA IDENTITY FULL;"


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError):
        pf.classify_table(table("t"), [], "maybe")


def test_an_index_unusable_only_for_nullable_columns_suggests_not_null_then_using_index():
    _, concerns = pf.classify_table(table("t"), [index("t_uniq", [("a", False), ("b", True)])])
    assert concerns[0]["fix"].startswith(
        "ALTER TABLE public.t ALTER COLUMN a SET NOT NULL; "
        "ALTER TABLE public.t REPLICA IDENTITY USING INDEX t_uniq;"
    )


def test_a_deferrable_primary_key_is_no_replica_identity():
    entry, concerns = pf.classify_table(
        table("t"), [index("t_pkey", [("id", True)], primary=True, deferrable=True)]
    )
    assert entry["replica_identity"] == "none"
    assert ids(concerns) == [("replica_identity_missing", "blocker")]
    assert "primary key t_pkey: deferrable" in concerns[0]["message"]


def test_replica_identity_nothing_with_a_primary_key_is_reset_to_default():
    entry, concerns = pf.classify_table(
        table("Mixed Case", replident="n", qualified='public."Mixed Case"'),
        [index("Mixed Case_pkey", [("id", True)], primary=True)],
    )
    assert entry["replica_identity"] == "primary_key"
    assert entry["replica_identity_setting"] == "nothing"
    assert ids(concerns) == [("replica_identity_nothing", "warning")]
    assert concerns[0]["fix"] == 'ALTER TABLE public."Mixed Case" REPLICA IDENTITY DEFAULT;'


def test_replica_identity_already_set_to_a_usable_index_needs_nothing():
    entry, concerns = pf.classify_table(table("rel", replident="i"), [index("rel_uniq", M2M, replident=True)])
    assert (entry["replica_identity"], entry["replica_identity_index"]) == ("unique_index", "rel_uniq")
    assert concerns == []


def test_replica_identity_full_is_reported_as_full_with_an_info():
    entry, concerns = pf.classify_table(table("t", replident="f"), [])
    assert entry["replica_identity"] == "full"
    assert ids(concerns) == [("replica_identity_full", "info")]
    entry, concerns = pf.classify_table(table("t", replident="f"), [index("t_pkey", [("id", True)], True)])
    assert entry["replica_identity"] == "full" and concerns == []


def test_the_best_unique_index_is_picked():
    wide = index("a_wide", [("x", True), ("y", True), ("z", True)])
    narrow = index("b_narrow", [("x", True)])
    constraint = index("c_constraint", [("x", True), ("y", True)], constraint_name="c_constraint")
    assert pf.pick_identity_index([wide, narrow])["name"] == "b_narrow"
    assert pf.pick_identity_index([wide, narrow, constraint])["name"] == "c_constraint"
    assert pf.pick_identity_index([index("p", [("id", True)], primary=True)]) is None


def test_an_unlogged_table_is_a_blocker_even_with_a_primary_key():
    entry, concerns = pf.classify_table(
        table("session_cache", persistence="u"), [index("session_cache_pkey", [("k", True)], True)]
    )
    assert entry["unlogged"] is True
    assert ids(concerns) == [("unlogged_table", "blocker")]
    assert concerns[0]["fix"].startswith("ALTER TABLE public.session_cache SET LOGGED;")


def test_a_partitioned_parent_gets_no_replica_identity_concern_but_an_info():
    parent = table("events", kind="p", oid=1)
    entries, concerns = pf.classify_tables([parent], [])
    assert entries[0]["partitioned"] is True
    assert ids(concerns) == [("partitioned_tables", "info")]


def test_classify_tables_matches_indexes_by_table_oid():
    tables = [table("a", oid=1), table("b", oid=2)]
    indexes = [dict(index("a_pkey", [("id", True)], True), table_oid=1)]
    entries, concerns = pf.classify_tables(tables, indexes)
    assert [entry["replica_identity"] for entry in entries] == ["primary_key", "none"]
    assert [item["subject"] for item in concerns] == ["public.b"]


# --- sequences ----------------------------------------------------------------------------


def sequence(name, owned_by=None, last_value=1, **extra):
    row = {
        "schema": "public",
        "name": name,
        "owned_by": owned_by,
        "last_value": last_value,
        "is_called": True,
        "data_type": "bigint",
        "increment": 1,
        "min_value": 1,
        "max_value": 9223372036854775807,
        "cycle": False,
        "readable": True,
    }
    row.update(extra)
    return row


def test_standalone_sequences_are_one_info_and_owned_ones_are_not_listed():
    rows = [
        sequence("ir_sequence_001"),
        sequence("ir_sequence_002", is_called=False),
        sequence("res_partner_id_seq", owned_by="public.res_partner.id"),
    ]
    concerns = pf.classify_sequences(rows)
    assert ids(concerns) == [("standalone_sequences", "info")]
    assert "public.ir_sequence_001, public.ir_sequence_002" in concerns[0]["message"]
    assert "res_partner_id_seq" not in concerns[0]["message"]
    assert concerns[0]["subject"] == "2 standalone sequences"
    entry = pf.sequence_entry(rows[1])
    assert entry == {
        "schema": "public",
        "name": "ir_sequence_002",
        "owned_by": None,
        "last_value": 1,
        "is_called": False,
        "data_type": "bigint",
        "increment": 1,
    }


def test_no_standalone_sequence_no_concern():
    assert pf.classify_sequences([sequence("s", owned_by="public.t.id")]) == []


def test_an_unreadable_sequence_and_one_near_its_limit_are_warnings():
    concerns = pf.classify_sequences(
        [
            sequence("secret_seq", owned_by="public.t.id", readable=False, last_value=None),
            sequence("small_seq", owned_by="public.u.id", last_value=95, max_value=100, data_type="smallint"),
            sequence(
                "down_seq", owned_by="public.v.id", increment=-1, last_value=-95, min_value=-100, max_value=-1
            ),
            sequence("cycling", owned_by="public.w.id", last_value=99, max_value=100, cycle=True),
        ]
    )
    assert ids(concerns) == [
        ("sequence_unreadable", "warning"),
        ("sequence_near_limit", "warning"),
        ("sequence_near_limit", "warning"),
    ]
    assert concerns[0]["fix"] == "GRANT SELECT ON SEQUENCE public.secret_seq TO <migration user>;"


# --- extensions and versions ----------------------------------------------------------------


SOURCE_EXTENSIONS = [
    {"name": "unaccent", "version": "1.1", "schema": "public"},
    {"name": "pg_trgm", "version": "1.6", "schema": "public"},
    {"name": "postgis", "version": "3.5.2", "schema": "public"},
    {"name": "plpgsql", "version": "1.0", "schema": "pg_catalog"},
]


def test_extensions_without_a_target_have_on_target_null():
    entries, concerns = pf.compare_extensions(SOURCE_EXTENSIONS, None)
    assert [entry["name"] for entry in entries] == ["pg_trgm", "plpgsql", "postgis", "unaccent"]
    assert all(entry["on_target"] is None for entry in entries)
    assert concerns == []


def test_missing_and_older_extensions_on_the_target():
    available = {
        "pg_trgm": {"default_version": "1.6", "versions": ["1.5", "1.6"]},
        "plpgsql": {"default_version": "1.0", "versions": ["1.0"]},
        "postgis": {"default_version": "3.4.0", "versions": ["3.3.0", "3.4.0"]},
    }
    entries, concerns = pf.compare_extensions(SOURCE_EXTENSIONS, available, "18")
    by_name = dict((entry["name"], entry) for entry in entries)
    assert by_name["unaccent"]["on_target"] is False
    assert by_name["pg_trgm"]["on_target"] is True and by_name["pg_trgm"]["target_version"] == "1.6"
    assert ids(concerns) == [
        ("extension_version_older_on_target", "warning"),
        ("extension_missing_on_target", "blocker"),
    ]
    assert "3.4.0" in concerns[0]["message"]
    assert "postgresql-18-unaccent" in concerns[1]["fix"]


def test_a_newer_or_unknown_extension_version_on_the_target():
    available = {"pg_trgm": {"default_version": "1.7", "versions": ["1.7"]}}
    _, concerns = pf.compare_extensions([{"name": "pg_trgm", "version": "1.6"}], available)
    assert concerns == []
    available = {"odd": {"default_version": "2.0", "versions": ["2.0"]}}
    _, concerns = pf.compare_extensions([{"name": "odd", "version": "1.0beta"}], available)
    assert ids(concerns) == [("extension_version_unknown_on_target", "info")]


def test_parse_version():
    assert pf.parse_version("1.6") == (1, 6)
    assert pf.parse_version("3.5.2") > pf.parse_version("3.5")
    assert pf.parse_version("1.0beta") is None
    assert pf.parse_version(None) is None


@pytest.mark.parametrize(
    "source, target, expected",
    [
        (170006, 180001, []),
        (170006, 170002, []),
        (170006, 160009, [("target_version_older", "blocker")]),
        (90624, 180001, [("source_version_unsupported", "blocker")]),
        (170006, None, []),
    ],
)
def test_version_comparison(source, target, expected):
    assert ids(pf.compare_versions(source, target)) == expected


def test_major_version():
    assert pf.major_version(170006) == "17"
    assert pf.major_version(90624) == "9.6"


# --- servers -----------------------------------------------------------------------------------


def source_server(**changes):
    server = {
        "version_num": 170006,
        "database": "acme",
        "in_recovery": False,
        "encoding": "UTF8",
        "lc_collate": "C.UTF-8",
        "lc_ctype": "C.UTF-8",
        "collation_provider": "libc",
        "locale": None,
        "collation_version": "2.41",
        "collation_actual_version": "2.41",
        "database_bytes": 74448403,
        "wal_level": "logical",
        "max_replication_slots": 10,
        "max_wal_senders": 10,
        "max_slot_wal_keep_size_bytes": 10 * 1024**3,
        "replication_slots_used": 0,
        "wal_senders_used": 0,
        "system_identifier": "111",
        "user": {"name": "postgres", "superuser": True, "replication": True, "read_all_stats": True},
    }
    server.update(changes)
    return server


def test_a_ready_source_server_has_no_concern():
    assert pf.check_source_server(source_server()) == []


def test_wal_level_replica_is_a_blocker_with_the_alter_system_fix():
    concerns = pf.check_source_server(source_server(wal_level="replica"))
    assert ids(concerns) == [("wal_level", "blocker")]
    assert concerns[0]["fix"] == "ALTER SYSTEM SET wal_level = logical; -- then restart PostgreSQL"
    assert "replica" in concerns[0]["message"]


def test_slot_and_sender_capacity():
    concerns = pf.check_source_server(source_server(max_replication_slots=2, replication_slots_used=2))
    assert ids(concerns) == [("max_replication_slots", "blocker")]
    concerns = pf.check_source_server(source_server(max_wal_senders=3, wal_senders_used=1))
    assert ids(concerns) == [("max_wal_senders", "warning")]
    assert concerns[0]["fix"] == "ALTER SYSTEM SET max_wal_senders = 10; -- then restart PostgreSQL"


def test_a_plain_source_role_lacks_replication_and_visibility():
    concerns = pf.check_source_server(
        source_server(
            user={"name": "odoo", "superuser": False, "replication": False, "read_all_stats": False}
        )
    )
    assert ids(concerns) == [
        ("source_replication_privilege", "blocker"),
        ("source_superuser_missing", "warning"),
        ("limited_visibility", "info"),
    ]
    assert concerns[0]["fix"] == "ALTER ROLE odoo REPLICATION;"


def test_a_standby_source_is_a_blocker():
    assert ids(pf.check_source_server(source_server(in_recovery=True))) == [("source_in_recovery", "blocker")]


def test_wal_budget_and_max_slot_wal_keep_size():
    gib = 1024**3
    assert ids(pf.check_wal(source_server(max_slot_wal_keep_size_bytes=-1), None)) == [
        ("max_slot_wal_keep_size", "info")
    ]
    concerns = pf.check_wal(source_server(max_slot_wal_keep_size_bytes=-1), 1024.0 * 1024, 2 * gib)
    assert ids(concerns) == [("max_slot_wal_keep_size", "warning"), ("wal_budget", "info")]
    assert (
        concerns[0]["fix"] == "ALTER SYSTEM SET max_slot_wal_keep_size = '2048MB'; SELECT pg_reload_conf();"
    )
    assert "34 min" in concerns[1]["message"]
    assert ids(pf.check_wal(source_server(max_slot_wal_keep_size_bytes=4 * gib), None, 2 * gib)) == [
        ("max_slot_wal_keep_size", "warning")
    ]
    assert pf.check_wal(source_server(), None, 20 * gib) == []
    assert "indefinitely" in pf.check_wal(source_server(), 0.0, 20 * gib)[0]["message"]


def target_server(**changes):
    target = source_server(
        version_num=180001,
        database="postgres",
        system_identifier="222",
        max_logical_replication_workers=4,
        max_sync_workers_per_subscription=2,
    )
    target.update(
        available_extensions={},
        template_database={
            "name": "template1",
            "encoding": "UTF8",
            "lc_collate": "C.UTF-8",
            "lc_ctype": "C.UTF-8",
            "collation_provider": "libc",
            "locale": None,
            "collation_version": "2.41",
        },
        same_name_database=None,
        locales=["C.utf8", "en_US.utf8"],
    )
    target.update(changes)
    return target


def test_a_ready_target_has_no_concern():
    target = target_server()
    assert pf.check_target_server(target, source_server()) == []
    assert pf.compare_locale(source_server(), target) == []
    assert pf.check_target_database(source_server(), target) == []


def test_target_settings_and_role():
    target = target_server(
        wal_level="replica",
        max_logical_replication_workers=2,
        max_replication_slots=1,
        replication_slots_used=1,
        user={"name": "app", "superuser": False},
    )
    assert ids(pf.check_target_server(target, source_server())) == [
        ("target_wal_level", "blocker"),
        ("target_logical_replication_workers", "warning"),
        ("target_max_replication_slots", "blocker"),
        ("target_superuser_missing", "blocker"),
    ]


def test_the_target_must_not_be_the_source():
    concerns = pf.check_target_server(target_server(system_identifier="111"), source_server())
    assert ids(concerns) == [("target_is_source", "blocker")]


def test_an_existing_target_database_with_another_encoding_is_a_blocker():
    existing = dict(target_server()["template_database"], name="acme", encoding="LATIN1", user_tables=3)
    target = target_server(same_name_database=existing)
    assert ids(pf.check_target_database(source_server(), target)) == [("target_database_exists", "warning")]
    assert "holds 3 tables" in pf.check_target_database(source_server(), target)[0]["message"]
    concerns = pf.compare_locale(source_server(), target)
    assert ids(concerns) == [("encoding_mismatch", "blocker")]
    assert "CREATE DATABASE acme TEMPLATE template0 ENCODING 'UTF8'" in concerns[0]["fix"]


def test_template_differences_are_warnings_and_library_versions_info():
    template = dict(
        target_server()["template_database"],
        encoding="SQL_ASCII",
        lc_collate="C",
        lc_ctype="C",
        collation_version="2.36",
    )
    concerns = pf.compare_locale(source_server(), target_server(template_database=template))
    assert ids(concerns) == [
        ("encoding_mismatch", "warning"),
        ("collation_mismatch", "warning"),
        ("collation_version_differs", "info"),
    ]


def test_collation_provider_and_missing_locale():
    source = source_server(lc_collate="de_DE.UTF-8", lc_ctype="de_DE.UTF-8")
    template = dict(target_server()["template_database"], lc_collate="de_DE.UTF-8", lc_ctype="de_DE.UTF-8")
    concerns = pf.compare_locale(source, target_server(template_database=template))
    assert ids(concerns) == [("locale_missing_on_target", "warning")]
    source = source_server(collation_provider="icu", locale="en-US", collation_version="153.128")
    concerns = pf.compare_locale(source, target_server())
    assert ids(concerns) == [("collation_provider", "warning")]
    assert concerns[0]["fix"].endswith("LOCALE_PROVIDER icu LOCALE 'C.UTF-8' ICU_LOCALE 'en-US';")


def test_the_sources_own_collation_version_drift():
    concerns = pf.check_source_collation(source_server(collation_version="2.36"))
    assert ids(concerns) == [("collation_version_mismatch", "warning")]
    assert "REFRESH COLLATION VERSION" in concerns[0]["fix"]


# --- activity, slots, objects ---------------------------------------------------------------------


def test_long_and_prepared_transactions():
    concerns = pf.check_activity(
        [{"pid": 42, "user": "odoo", "database": "acme", "state": "idle in transaction", "age_seconds": 900}],
        [{"gid": "tx'1", "owner": "odoo", "database": "acme", "age_seconds": 10}],
        300,
    )
    assert ids(concerns) == [("long_transaction", "warning"), ("prepared_transaction", "blocker")]
    assert concerns[0]["fix"].endswith("SELECT pg_terminate_backend(42);")
    assert "COMMIT PREPARED 'tx''1';" in concerns[1]["fix"]


def test_inactive_slots_are_warnings_active_ones_are_not():
    concerns = pf.check_slots(
        [
            {"slot_name": "old", "slot_type": "logical", "active": False, "retained_bytes": 3 * 1024**2},
            {"slot_name": "live", "slot_type": "physical", "active": True},
            {"slot_name": "gone", "slot_type": "logical", "active": False, "wal_status": "lost"},
        ]
    )
    assert ids(concerns) == [("inactive_slot", "warning"), ("inactive_slot", "warning")]
    assert "3.0 MB" in concerns[0]["message"]
    assert "lost" in concerns[1]["message"]
    assert concerns[0]["fix"].startswith("SELECT pg_drop_replication_slot('old');")


def test_objects_publications_and_subscriptions():
    concerns = pf.check_objects(
        {"materialized_views": ["public.mv"], "foreign_tables": [], "event_triggers": ["guard"]}, 3
    )
    assert ids(concerns) == [
        ("large_objects", "warning"),
        ("materialized_views", "info"),
        ("event_triggers", "info"),
    ]
    assert pf.check_objects({}, 0) == []
    concerns = pf.check_publications([{"name": "p", "all_tables": True}], [{"name": "s", "enabled": True}])
    assert ids(concerns) == [("existing_publication", "info"), ("existing_subscription", "info")]


# --- ordering, summary, quoting, whole classification ---------------------------------------------------


def test_concerns_sort_blockers_warnings_info_and_keep_their_order_within():
    concerns = [
        pf.concern("wal_budget", "info", "a", "m", "f"),
        pf.concern("inactive_slot", "warning", "b", "m", "f"),
        pf.concern("wal_level", "blocker", "c", "m", "f"),
        pf.concern("inactive_slot", "warning", "d", "m", "f"),
        pf.concern("unlogged_table", "blocker", "e", "m", "f"),
    ]
    assert [item["subject"] for item in pf.sort_concerns(concerns)] == ["c", "e", "b", "d", "a"]
    summary = pf.summarize(concerns)
    assert summary == {
        "counts": {"blocker": 2, "warning": 2, "info": 1},
        "blockers": 2,
        "warnings": 2,
        "ready": False,
    }
    assert pf.summarize([])["ready"] is True
    with pytest.raises(ValueError):
        pf.concern("wal_level", "fatal", "s", "m", "f")
    with pytest.raises(ValueError):
        pf.concern("something_new", "info", "s", "m", "f")


def test_every_concern_id_is_documented():
    docs = (Path(__file__).resolve().parents[4] / "docs" / "preflight.md").read_text()
    missing = sorted(concern_id for concern_id in pf.CONCERN_IDS if f"| `{concern_id}` |" not in docs)
    assert missing == []


@pytest.mark.parametrize(
    "name, quoted",
    [("res_partner", "res_partner"), ("Mixed Case", '"Mixed Case"'), ("user", '"user"'), ('a"b', '"a""b"')],
)
def test_quote_ident(name, quoted):
    assert pf.quote_ident(name) == quoted


def test_classify_builds_the_whole_result():
    read = {
        "server": source_server(wal_level="replica"),
        "tables": [
            table("res_partner", oid=1),
            table("lab_document_partner_rel", oid=2),
            table("lab_audit_log", oid=3),
        ],
        "indexes": [
            dict(index("res_partner_pkey", [("id", True)], True), table_oid=1),
            dict(index("lab_document_partner_rel_uniq", M2M), table_oid=2),
        ],
        "sequences": [
            sequence("ir_sequence_001"),
            sequence("res_partner_id_seq", owned_by="public.res_partner.id"),
        ],
        "extensions": [{"name": "unaccent", "version": "1.1", "schema": "public"}],
        "objects": {"large_objects": 0},
        "slots": [],
        "publications": [],
        "subscriptions": [],
        "long_transactions": [],
        "prepared_transactions": [],
    }
    result = pf.classify(read, target_server(), 2048.0, {"replica_identity_policy": "refuse"})
    assert ids(result["concerns"]) == [
        ("wal_level", "blocker"),
        ("replica_identity_missing", "blocker"),
        ("extension_missing_on_target", "blocker"),
        ("replica_identity_index", "warning"),
        ("standalone_sequences", "info"),
    ]
    assert result["summary"]["blockers"] == 3 and result["summary"]["ready"] is False
    assert result["summary"]["tables"] == 3 and result["summary"]["standalone_sequences"] == 1
    assert result["target"]["database_exists"] is False
    assert result["extensions"][0]["on_target"] is False
    assert result["wal_rate_bytes_per_second"] == 2048.0
    assert "available_extensions" not in result["target"]
    source_only = pf.classify(read, None, None, {"replica_identity_policy": "full"})
    assert source_only["target"] is None
    assert ("replica_identity_missing", "warning") in ids(source_only["concerns"])


def test_a_name_another_instance_holds_on_the_target_is_a_blocker_and_replaces_the_existing_warning():
    collision = dict(
        kind="role",
        name="odoo",
        holder="legacy-vm-1",
        problem="role odoo on the target belongs to instance legacy-vm-1",
        fix="its own name on the target: in plan.yml, target_roles: {odoo: odoo_legacy_vm_2}",
    )
    concerns = pf.check_tenancy([collision])
    assert ids(concerns) == [("tenant_collision", "blocker")]
    assert "target_roles: {odoo: odoo_legacy_vm_2}" in concerns[0]["fix"]
    existing = dict(target_server()["template_database"], name="acme", user_tables=3)
    # A named instance's own earlier copy is no concern; anybody else's comes as a collision.
    target = target_server(same_name_database=existing, tenant_collisions=[])
    assert pf.check_target_database(source_server(), target) == []
