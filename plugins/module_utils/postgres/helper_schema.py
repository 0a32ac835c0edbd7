# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration's helper schema odoo_migration, private: every table of it defined once.

The copy creates its bookkeeping on the target and the heartbeat and marker on the source; the
cutover creates what it needs on both sides. Finalize drops the schema.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

SCHEMA_NAME = "odoo_migration"
# CREATE SCHEMA IF NOT EXISTS races a concurrent creation (a unique violation on pg_namespace):
# every creator takes this lock first, in its transaction.
LOCK = "SELECT pg_advisory_xact_lock(hashtext('odoo_migration:helper_schema'))"
SCHEMA = "CREATE SCHEMA IF NOT EXISTS odoo_migration"
MARKER = (
    "CREATE TABLE IF NOT EXISTS odoo_migration.marker ("
    " id bigserial PRIMARY KEY, token text UNIQUE, created_at timestamptz DEFAULT clock_timestamp())"
)
HEARTBEAT = "CREATE TABLE IF NOT EXISTS odoo_migration.heartbeat (id int PRIMARY KEY, beat timestamptz)"
HEARTBEAT_ROW = "INSERT INTO odoo_migration.heartbeat VALUES (1, clock_timestamp()) ON CONFLICT DO NOTHING"
FENCED_ROLES = (
    "CREATE TABLE IF NOT EXISTS odoo_migration.fenced_roles ("
    " fenced_on text NOT NULL, role_name text NOT NULL, rolcanlogin boolean NOT NULL,"
    " read_only_setting text, fenced_at timestamptz DEFAULT clock_timestamp(),"
    " PRIMARY KEY (fenced_on, role_name))"
)
COPY_STATE = (
    "CREATE TABLE IF NOT EXISTS odoo_migration.copy_state ("
    " key text PRIMARY KEY, value text, updated_at timestamptz DEFAULT clock_timestamp())"
)
COPY_PROGRESS = (
    "CREATE TABLE IF NOT EXISTS odoo_migration.copy_progress ("
    " table_schema text NOT NULL, table_name text NOT NULL, chunk int NOT NULL,"
    " lo bigint, hi bigint, id_column text, ord int NOT NULL, bytes bigint,"
    " done boolean NOT NULL DEFAULT false, rows bigint, seconds double precision, attempts int DEFAULT 0,"
    " done_at timestamptz, PRIMARY KEY (table_schema, table_name, chunk))"
)
WRITE_HOLDS = (
    "CREATE TABLE IF NOT EXISTS odoo_migration.write_holds ("
    " schema_name text NOT NULL, relation text NOT NULL, kind text NOT NULL, role_name text NOT NULL,"
    " privilege text NOT NULL, held_at timestamptz DEFAULT clock_timestamp(),"
    " PRIMARY KEY (schema_name, relation, role_name, privilege))"
)

# In the target's maintenance database: which instance each database and role belongs to.
TENANT_CLAIM = (
    "CREATE TABLE IF NOT EXISTS odoo_migration.tenant_claim ("
    " kind text NOT NULL CHECK (kind IN ('database', 'role')), name text NOT NULL,"
    " instance text NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (kind, name))"
)
PRIVATE = "REVOKE ALL ON SCHEMA odoo_migration FROM PUBLIC"


def script(*statements):
    """Statements as one SQL script (for psql, or one simple-query execute)."""
    return "".join(statement + ";\n" for statement in statements)


# The copy's bookkeeping, on the target (restored with the pre-data schema, in its transaction).
COPY_BOOKKEEPING_SQL = script(LOCK, SCHEMA, COPY_STATE, COPY_PROGRESS)
# The source's part: the heartbeat that times the lag and the marker the cutover proves with.
SOURCE_SQL = script(LOCK, SCHEMA, HEARTBEAT, MARKER, HEARTBEAT_ROW)
# The cutover's, on both sides. The return path publishes FOR ALL TABLES, so its subscriber (the source)
# needs the copy's bookkeeping tables too, or CREATE SUBSCRIPTION odoo_migration_reverse fails
# ("relation odoo_migration.copy_progress does not exist"); they stay empty there.
CUTOVER_DDL = (LOCK, SCHEMA, MARKER, HEARTBEAT, FENCED_ROLES, COPY_STATE, COPY_PROGRESS, WRITE_HOLDS)
# The tenant claims, in the maintenance database, readable by superusers only.
TENANT_CLAIMS_SQL = script(LOCK, SCHEMA, PRIVATE, TENANT_CLAIM)
