"""Refused schema options: reports and the rewrite of pg_dump's script."""

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import schema_options as so

COLUMN_ONLY = {"column": {"pg_attver"}, "relation": set()}


def test_a_column_option_statement_left_with_nothing_is_dropped():
    script = (
        "CREATE TABLE public.t (\n    id integer NOT NULL\n);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN id SET (pg_attver=3);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=-1, pg_attver=3);\n"
    )
    out = so.strip_script(script, COLUMN_ONLY)
    assert "pg_attver" not in out
    assert "ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=-1);" in out
    assert "-- odoo_migration: dropped options the target refuses" in out
    assert "CREATE TABLE public.t (" in out


def test_storage_parameters_are_dropped_from_with_lists_and_empty_lists_vanish():
    names = {"column": set(), "relation": {"fork_magic", "toast.fork_magic"}}
    script = (
        "CREATE TABLE public.a (\n    id integer\n)\nWITH (fillfactor='70', fork_magic='on');\n"
        "CREATE TABLE public.b (\n    id integer\n)\nWITH (fork_magic='on', toast.fork_magic='1');\n"
        "CREATE MATERIALIZED VIEW public.m WITH (fork_magic='x') AS\n SELECT 1 AS x\n  WITH NO DATA;\n"
    )
    out = so.strip_script(script, names)
    assert "WITH (fillfactor='70');" in out
    assert "fork_magic" not in out
    assert ")\n;\n" in out
    assert "CREATE MATERIALIZED VIEW public.m AS" in out
    assert "WITH NO DATA" in out


def test_function_bodies_are_left_alone():
    script = (
        "CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN id SET (pg_attver=3);\nEND $$;\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN id SET (pg_attver=3);\n"
    )
    out = so.strip_script(script, COLUMN_ONLY)
    assert out.count("pg_attver") == 1
    assert "BEGIN\nALTER TABLE ONLY public.t ALTER COLUMN id SET (pg_attver=3);\nEND $$;" in out


def test_quoted_values_with_commas_are_kept_whole():
    names = {"column": set(), "relation": {"bad"}}
    line = "CREATE VIEW public.v WITH (check_option='a,b', bad='x,y') AS"
    assert so.strip_statement(line, names) == "CREATE VIEW public.v WITH (check_option='a,b') AS"


def test_nothing_refused_leaves_the_script_byte_for_byte():
    script = "ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=-1);\n"
    assert so.strip_script(script, {"column": set(), "relation": set()}) == script


def test_constraint_and_index_statements_lose_refused_parameters():
    names = {"column": set(), "relation": {"fork_magic"}}
    sql = "ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (id) WITH (fork_magic='1', fillfactor='9')"
    assert so.strip_statement(sql, names).endswith("PRIMARY KEY (id) WITH (fillfactor='9')")
    sql = "CREATE INDEX t_x ON public.t USING btree (x) WITH (fork_magic='1')"
    assert so.strip_statement(sql, names) == "CREATE INDEX t_x ON public.t USING btree (x)"


def test_report_counts_objects_per_scope_and_option():
    entries = [
        {"scope": "column", "am": None, "object": "public.t.a", "options": ["pg_attver=1"]},
        {"scope": "column", "am": None, "object": "public.t.b", "options": ["pg_attver=2", "n_distinct=5"]},
        {"scope": "index", "am": "btree", "object": "public.t_x", "options": ["fillfactor=90"]},
    ]
    probes = so.distinct_probes(entries)
    # One try per option name, whatever its values (pg_attver has one per column).
    assert set(probes) == {
        ("column", None, "pg_attver=1"),
        ("column", None, "n_distinct=5"),
        ("index", "btree", "fillfactor=90"),
    }
    refused = {("column", None, "pg_attver"): 'unrecognized parameter "pg_attver"'}
    report = so.refused_entries(entries, refused)
    assert report == [
        {
            "scope": "column",
            "option": "pg_attver",
            "error": 'unrecognized parameter "pg_attver"',
            "objects": 2,
            "examples": ["public.t.a", "public.t.b"],
        }
    ]
    assert so.refused_names(report) == {"column": {"pg_attver"}, "relation": set()}
    assert "column option pg_attver on 2 object(s)" in so.describe(report)


def test_probes_quote_values_and_skip_unknown_access_methods():
    assert so.probe_statements("column", None, "pg_attver=1") == [
        "ALTER TABLE pg_temp.odoo_migration_probe ALTER COLUMN i SET (pg_attver='1')"
    ]
    assert "USING gin (a)" in so.probe_statements("index", "gin", "fastupdate=off")[0]
    assert so.probe_statements("index", "bloom", "length=80") is None
    assert "WITH (x='it''s')" in so.probe_statements("table", None, "x=it's")[0]
