"""Pure parts of the comparison: chunk planning, SQL generation, drill-down, sequences."""

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import compare as _compare

TABLE = {"schema": "public", "name": "res_partner"}


def test_chunks_cover_the_range_exactly():
    assert _compare.plan_chunks(1, 10, 4) == [(1, 5), (5, 9), (9, 11)]
    assert _compare.plan_chunks(7, 7, 100) == [(7, 8)]
    assert _compare.plan_chunks(None, None, 10) == []
    assert _compare.plan_chunks(-5, 4, 5) == [(-5, 0), (0, 5)]
    chunks = _compare.plan_chunks(1, 1_000_000, 50_000)
    assert len(chunks) == 20 and chunks[0][0] == 1 and chunks[-1][1] == 1_000_001
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))


def test_union_range_takes_both_sides():
    assert _compare.union_range([(1, 10), (3, 12)]) == (1, 12)
    assert _compare.union_range([(None, None), (3, 12)]) == (3, 12)
    assert _compare.union_range([(None, None), (None, None)]) == (None, None)


def test_hash_is_order_independent_and_names_columns():
    expression = _compare.hash_expression(["id", "Name"])
    assert expression.startswith("coalesce(sum(")
    assert 'ROW(t."id", t."Name")::text' in expression
    assert "md5(" in expression and "::bit(64)::bigint::numeric" in expression


def test_chunk_and_rows_statements():
    whole = _compare.chunk_statement(TABLE, ["id", "name"])
    assert whole.endswith('FROM "public"."res_partner" AS t') and "count(*)" in whole
    ranged = _compare.chunk_statement(TABLE, ["id", "name"], key="id")
    assert ranged.endswith('WHERE "id" >= %s AND "id" < %s')
    rows = _compare.rows_statement(TABLE, ["a", "b", "x"], ["a", "b"])
    assert rows.startswith('SELECT ROW(t."a", t."b")::text AS key')
    assert rows.endswith('ORDER BY t."a", t."b"')


def test_diff_rows_names_missing_extra_and_different_keys():
    source = [{"key": "(1)", "digest": "a"}, {"key": "(2)", "digest": "b"}, {"key": "(3)", "digest": "c"}]
    target = [{"key": "(1)", "digest": "a"}, {"key": "(3)", "digest": "X"}, {"key": "(4)", "digest": "d"}]
    diff = _compare.diff_rows(source, target)
    assert diff["missing_on_target"] == ["(2)"]
    assert diff["extra_on_target"] == ["(4)"]
    assert diff["different"] == ["(3)"]
    assert diff["counts"] == {"missing_on_target": 1, "extra_on_target": 1, "different": 1}
    many = [{"key": f"({i})", "digest": "x"} for i in range(50)]
    assert len(_compare.diff_rows(many, [], limit=5)["missing_on_target"]) == 5


def test_sequences_compare_value_and_is_called():
    source = [
        {"schema": "public", "name": "ir_sequence_001", "last_value": 5, "is_called": True},
        {"schema": "public", "name": "a_id_seq", "last_value": 1, "is_called": False},
        {"schema": "public", "name": "gone", "last_value": 1, "is_called": False},
    ]
    target = [
        {"schema": "public", "name": "ir_sequence_001", "last_value": 5, "is_called": True},
        {"schema": "public", "name": "a_id_seq", "last_value": 1, "is_called": True},
    ]
    diffs = _compare.compare_sequences(source, target)
    assert [(d["kind"], d["table"]) for d in diffs] == [
        ("sequence_value", '"public"."a_id_seq"'),
        ("sequence_missing", '"public"."gone"'),
    ]
