"""Pure parts of the replication engine: chunk planning, ordering, resume, SQL, redaction."""

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    copy_chunks,
    copy_common,
    copy_schema,
    copy_snapshot,
    sql,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import replication as rep
from psycopg.conninfo import conninfo_to_dict


def _table(name, rows, size, id_column="id", *, lo=1, hi=None):
    return {
        "schema": "public",
        "name": name,
        "rows": rows,
        "bytes": size,
        "id_column": id_column,
        "min_id": lo,
        "max_id": hi if hi is not None else rows,
    }


def test_small_tables_are_one_chunk_and_largest_first():
    chunks = copy_chunks.plan_chunks([_table("a", 10, 100), _table("b", 10, 900), _table("c", 10, 500)], 1000)
    assert [c["name"] for c in chunks] == ["b", "c", "a"]
    assert all(c["lo"] is None and c["hi"] is None for c in chunks)
    assert [c["order"] for c in chunks] == [0, 1, 2]


def test_big_table_split_into_ranges_covering_every_id():
    chunks = copy_chunks.plan_chunks([_table("big", 10000, 10**6, lo=1, hi=10000)], 3000)
    ranges = [(c["lo"], c["hi"]) for c in chunks]
    assert len(ranges) == 4
    assert ranges[0][0] == 1
    assert ranges[-1][1] is None  # open-ended: rows past max_id are not lost
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert hi == lo  # contiguous, no gap, no overlap
    assert [c["chunk"] for c in sorted(chunks, key=lambda c: c["chunk"])] == [0, 1, 2, 3]


def test_table_without_integer_key_is_never_split():
    chunks = copy_chunks.plan_chunks([_table("rel", 10**6, 10**8, None, lo=None, hi=None)], 1000)
    assert len(chunks) == 1 and chunks[0]["lo"] is None


def test_sparse_ids_split_by_count_not_span():
    chunks = copy_chunks.plan_chunks([_table("sparse", 4000, 10**6, lo=1, hi=10**9)], 1000)
    assert len(chunks) == 4


def test_chunk_rows_must_be_positive():
    with pytest.raises(ValueError):
        copy_chunks.plan_chunks([], 0)


def test_copy_statements_for_a_range_and_a_whole_table():
    out, into, cleanup = copy_chunks.copy_statements("public", "res_partner", ["id", "name"], "id", 10, 20)
    assert out == (
        "COPY (SELECT id, name FROM ONLY public.res_partner WHERE id >= 10 AND id < 20) "
        "TO STDOUT (FORMAT binary)"
    )
    assert into == "COPY public.res_partner (id, name) FROM STDIN (FORMAT binary)"
    assert cleanup == "DELETE FROM ONLY public.res_partner WHERE id >= 10 AND id < 20"
    # A whole table: COPY of the table itself, TRUNCATE then COPY FREEZE on the target.
    out, into, cleanup = copy_chunks.copy_statements("public", "Odd Name", ["select"], None, None, None)
    assert out == 'COPY public."Odd Name" ("select") TO STDOUT (FORMAT binary)'
    assert into == 'COPY public."Odd Name" ("select") FROM STDIN (FORMAT binary, FREEZE)'
    assert cleanup == 'TRUNCATE ONLY public."Odd Name"'
    _, into, cleanup = copy_chunks.copy_statements("public", "small", ["id"], "id", None, None, freeze=False)
    assert into == "COPY public.small (id) FROM STDIN (FORMAT binary)"
    assert cleanup == "DELETE FROM ONLY public.small"
    assert copy_chunks.chunk_predicate("id", 5, None) == " WHERE id >= 5"


def test_resume_decisions():
    assert copy_snapshot.resume_decision({}, False)[0] == "start"
    assert copy_snapshot.resume_decision({"slot": "s", "snapshot": "x"}, True)[0] == "resume"
    action, message = copy_snapshot.resume_decision({"slot": "s", "snapshot": "x"}, False)
    assert action == "restart_required"
    assert "state=absent" in message and "drop_target_database" in message
    assert copy_snapshot.resume_decision({"slot": "s", "data": "done"}, False)[0] == "copied"


def _rel(oid, name, replident="d"):
    return {
        "oid": oid,
        "schema": "public",
        "name": name,
        "relkind": "r",
        "relpersistence": "p",
        "relreplident": replident,
    }


def _index(oid, name, primary=False, nullable=False):
    return {
        "table_oid": oid,
        "name": name,
        "is_primary": primary,
        "is_unique": True,
        "is_valid": True,
        "columns": [{"name": "a", "not_null": not nullable}, {"name": "b", "not_null": True}],
    }


def test_replica_identity_fixes_by_policy():
    tables = [_rel(1, "with_pk"), _rel(2, "m2m"), _rel(3, "bare"), _rel(4, "already_full", "f")]
    indexes = [_index(1, "with_pk_pkey", primary=True), _index(2, "m2m_unique")]
    statements, refused = copy_schema.replica_identity_fixes(tables, indexes, "refuse")
    assert statements == [("public.m2m", "ALTER TABLE public.m2m REPLICA IDENTITY USING INDEX m2m_unique")]
    assert refused == ["public.bare"]
    statements, refused = copy_schema.replica_identity_fixes(tables, indexes, "full")
    assert ("public.bare", "ALTER TABLE public.bare REPLICA IDENTITY FULL") in statements
    assert refused == []
    with pytest.raises(ValueError):
        copy_schema.replica_identity_fixes(tables, indexes, "maybe")


def test_nullable_unique_index_is_not_used():
    statements, refused = copy_schema.replica_identity_fixes(
        [_rel(2, "t")], [_index(2, "t_u", nullable=True)], "refuse"
    )
    assert statements == [] and refused == ["public.t"]


def test_subscription_sql_and_conninfo_quoting():
    info = rep.conninfo("src", 5432, "rep", "p'w\\d", "shop")
    # libpq reads back exactly what was given, the password's quote and backslash included.
    assert conninfo_to_dict(info) == dict(
        host="src", port="5432", user="rep", dbname="shop", password="p'w\\d"
    )
    sql = rep.subscription_sql(info, "odoo_migration", target_major=18)
    assert sql.startswith("CREATE SUBSCRIPTION odoo_migration CONNECTION '")
    assert "create_slot = false, slot_name = 'odoo_migration', copy_data = false" in sql
    assert "binary = true, streaming = parallel, disable_on_error = true, run_as_owner = true" in sql
    assert "run_as_owner" not in rep.subscription_sql(info, "s", target_major=15)
    assert "streaming = on" in rep.subscription_sql(info, "s", target_major=15)
    assert "disable_on_error" not in rep.subscription_sql(info, "s", target_major=14)


def test_password_redacted_from_subscription_errors():
    password = "s3cr'et"
    info = rep.conninfo("src", 5432, "rep", password, "shop")
    error = f"syntax error near {sql.literal(info)} in {info}"
    text = _pg.error_text(error, rep.secret_variants(password))
    assert "s3cr" not in text and "et" not in text.split("password=")[-1].replace("*", "")


def test_budget_verdict():
    assert rep.budget_verdict(81, 100) == (True, 80)
    assert rep.budget_verdict(80, 100) == (False, 80)
    assert rep.budget_verdict(10**12, None) == (False, None)


def test_step_log_records_duration_and_changed():
    ticks = iter([0.0, 1.5, 2.0, 2.25])
    log = copy_common.StepLog(clock=lambda: next(ticks))
    log.run("one", lambda: (True, "did"))
    log.run("two", lambda: False)
    log.skip("three", "done")
    assert [(s["step"], s["seconds"], s["changed"]) for s in log.steps] == [
        ("one", 1.5, True),
        ("two", 0.25, False),
        ("three", 0.0, False),
    ]
    assert log.changed


@pytest.mark.parametrize(
    "login, problem",
    [
        (
            {"name": "Odoo-Forward", "password": "x"},
            "replication_login.name 'Odoo-Forward' is not a PostgreSQL role",
        ),
        ({"name": "odoo_migration_forward_vm", "password": ""}, "replication_login.password is empty"),
    ],
)
def test_a_bad_replication_login_is_refused_before_any_connection(login, problem):
    source = _pg.PgEndpoint("127.0.0.1", "acme", 1, "odoo_migration", "s", "disable")
    with pytest.raises(rep.ReplicationError, match=problem):
        rep.Migration(source, source.with_database("postgres"), "host=vm", replication_login=login)


def test_the_replication_logins_password_is_redacted_from_errors():
    source = _pg.PgEndpoint("127.0.0.1", "acme", 1, "odoo_migration", "s", "disable")
    migration = rep.Migration(
        source,
        source.with_database("postgres"),
        "host=vm",
        replication_login={"name": "odoo_migration_forward_vm", "password": "Forward-Secret-9"},
    )
    with pytest.raises(rep.ReplicationError) as raised:
        migration._fail("could not connect: password=Forward-Secret-9 rejected")
    assert "Forward-Secret-9" not in str(raised.value)
