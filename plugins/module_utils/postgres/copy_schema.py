# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy's schema transfer, private: the source prepared (helper schema, replica identity,
publication), names claimed, roles and database on the target, pre-data restored by pg_dump | psql."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import client as _client
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    helper_schema as _helper_schema,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (
    schema_options as _schema_options,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import tenancy as _tenancy
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.copy_common import (
    APPLICATION_NAME,
    BOOKKEEPING_SQL,
    HELPER_SOURCE_SQL,
    POLICIES,
    PUBLICATION,
    _all,
    _exists_database,
    _one,
    qname,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.cutover import (
    DATABASE_ROLES_SQL,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.replica_identity import (
    POLICY_FULL,
    collect_tables,
    collect_unique_indexes,
    index_problems,
    pick_identity_index,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import (
    literal as quote_literal,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.sql import quote_ident


def replica_identity_fixes(tables, indexes, policy):
    """Statements that give every table a replica identity, and tables refused.

    tables: rows of replica_identity.collect_tables; indexes: of collect_unique_indexes.
    policy: full (REPLICA IDENTITY FULL where no usable unique index), refuse (report them),
    index_only (same as refuse; kept for symmetry with the preflight wording).
    Returns (statements, refused): statements as [(table_qualified, sql)].
    """
    if policy not in POLICIES:
        raise ValueError("replica_identity_policy must be one of %s" % ", ".join(POLICIES))
    by_table = {}
    for index in indexes:
        by_table.setdefault(index["table_oid"], []).append(index)
    statements, refused = [], []
    for table in tables:
        if table.get("relkind") == "p" or table.get("relpersistence") == "u":
            continue  # partitions replicate through their leaves; unlogged tables never do
        setting = table.get("relreplident") or "d"
        own = by_table.get(table["oid"], [])
        name = table.get("qualified") or qname(table["schema"], table["name"])
        if setting in ("f", "i"):
            continue
        if setting == "d" and any(ix.get("is_primary") and not index_problems(ix) for ix in own):
            continue
        chosen = pick_identity_index(own)
        if chosen is not None:
            statements.append(
                (
                    name,
                    "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s"
                    % (name, chosen.get("quoted_name") or quote_ident(chosen["name"])),
                )
            )
        elif policy == POLICY_FULL:
            statements.append((name, "ALTER TABLE %s REPLICA IDENTITY FULL" % name))
        else:
            refused.append(name)
    return statements, refused


class SchemaTransfer:
    """Steps of Migration (postgres/replication.py): this mixin uses its attributes."""

    # -- P1: source --------------------------------------------------------------------
    def prepare_source(self, conn):
        done = []
        version = _one(conn, "SELECT current_setting('server_version_num')::int AS v")["v"]
        wal_level = _one(conn, "SELECT current_setting('wal_level') AS v")["v"]
        if wal_level != "logical":
            if not self.check_mode:
                self._fail(
                    "wal_level is %s on the source %s; set wal_level = logical and restart it "
                    "(see pg_migration_preflight)" % (wal_level, self.source.describe())
                )
            # Check mode plans on: a real run needs the restart first (pg_replicate does it when allowed).
            self._would(
                "need wal_level = logical on the source (it is %s): a real run fails until it is set and the "
                "server restarted" % wal_level
            )
        helper = _one(
            conn,
            "SELECT to_regclass('odoo_migration.heartbeat') IS NOT NULL AND "
            "to_regclass('odoo_migration.marker') IS NOT NULL AS x",
        )["x"]
        if not helper:
            if self.check_mode:
                self._would("create the helper schema odoo_migration on the source")
            else:
                with conn.transaction():
                    conn.execute(HELPER_SOURCE_SQL)
                done.append("helper schema")
        statements, refused = replica_identity_fixes(
            collect_tables(conn), collect_unique_indexes(conn, version), self.policy
        )
        if refused:
            self._fail(
                "%d table(s) have neither a primary key nor a usable unique index, so UPDATE and DELETE "
                "on them would fail once published: %s. Add a primary key, or set "
                "replica_identity_policy=full (REPLICA IDENTITY FULL)."
                % (len(refused), ", ".join(refused[:20]))
            )
        for _table, sql in statements:
            if self.check_mode:
                self._would(sql)
            else:
                conn.execute(sql)
                done.append(sql)
        self.result["replica_identity_fixes"] = [item[1] for item in statements]
        if not _one(conn, "SELECT 1 AS x FROM pg_publication WHERE pubname = %s", (PUBLICATION,)):
            if self.check_mode:
                self._would("CREATE PUBLICATION odoo_migration FOR ALL TABLES")
            else:
                conn.execute("CREATE PUBLICATION %s FOR ALL TABLES" % quote_ident(PUBLICATION))
                done.append("publication")
        return bool(done) or (self.check_mode and bool(self.result["would"])), ", ".join(done) or None

    # -- P0: options of the source's schema that the target refuses ------------------------
    def check_schema_options(self, source_conn, server_conn):
        """Try the source's column options and storage parameters on the target; refuse or
        plan to drop the ones it does not accept (before anything is written anywhere)."""
        report = _schema_options.refused_on_target(source_conn, server_conn)
        self.refused_options = _schema_options.refused_names(report)
        if not report:
            return False, "the target accepts every option of the source's schema"
        if self.schema_option_policy == _schema_options.POLICY_REFUSE:
            self._fail(
                "the target refuses %d option(s) of the source's schema (schema_option_policy=refuse): %s. "
                "Remove them on the source (ALTER TABLE ... RESET (...), ALTER TABLE ... ALTER COLUMN ... "
                "RESET (...)) or set schema_option_policy=drop to leave them out on the target"
                % (len(report), _schema_options.describe(report))
            )
        self.result["schema_options_dropped"] = report
        return False, "left out on the target (schema_option_policy=drop): %s" % _schema_options.describe(
            report
        )

    def _without_refused_options(self, items):
        return [
            item[:4] + (_schema_options.strip_statement(item[4], self.refused_options),) for item in items
        ]

    # -- P1: target --------------------------------------------------------------------
    def source_roles(self, conn):
        """Roles the source database uses (owners, grantees and their direct members)."""
        return [row["name"] for row in _all(conn, DATABASE_ROLES_SQL)]

    def _target_role(self, role):
        return _tenancy.renamed(role, self.role_map)

    def claim_names(self, source_conn, server_conn):
        """The target names this instance needs (its database, its roles as role_map names
        them): refused when another instance holds one, else claimed for this instance."""
        roles = self.source_roles(source_conn)
        self.result["target_roles"] = dict((role, self._target_role(role)) for role in roles)
        if not self.instance:
            return False, "no instance named: names are not claimed (a dedicated target)"
        roles = _tenancy.claimable(roles, self.source.user)
        targets = [self._target_role(role) for role in roles]
        found = _tenancy.collisions(
            server_conn,
            self.instance,
            [self.target_database],
            targets,
            dict((self._target_role(role), role) for role in roles),
        )
        if found:
            self._fail(
                "instance %s cannot move to this target, its names collide with another tenant's: %s"
                % (self.instance, _tenancy.describe(found))
            )
        if self.check_mode:
            held = _tenancy.read_claims(server_conn)
            wanted = [(_tenancy.DATABASE, self.target_database)] + [(_tenancy.ROLE, role) for role in targets]
            claimed = ["%s %s" % key for key in wanted if key not in held]
            if claimed:
                self._would("claim for %s: %s" % (self.instance, ", ".join(claimed)))
            return bool(claimed), None
        try:
            claimed = _tenancy.claim(server_conn, self.instance, [self.target_database], targets)
        except _tenancy.TenancyError as error:
            self._fail("instance %s cannot move to this target: %s" % (self.instance, error))
        return bool(claimed), ", ".join(claimed) or None

    def restrict_connect(self, server_conn):
        """Only this instance's roles (and superusers) may connect to its database."""
        if not self.instance:
            return False, None
        roles = sorted(set(self.result["target_roles"].values()))
        if not _exists_database(server_conn, self.target_database):
            if self.check_mode:
                self._would("let only %s connect to %s" % (", ".join(roles), self.target_database))
                return True, None
            return False, None
        statements = _tenancy.connect_statements(server_conn, self.target_database, roles)
        for sql in statements:
            if self.check_mode:
                self._would(sql)
            else:
                server_conn.execute(sql)
        return bool(statements), "; ".join(statements) or None

    def prepare_target_roles(self, source_conn, server_conn):
        """Each role the database uses, under its target name (role_map), created NOLOGIN (the
        cutover gives login roles their login), and the memberships among them as on the source."""
        with server_conn.transaction():
            # Instances of one wave share roles of the same name (the migration login): creators take
            # turns, or the second CREATE ROLE fails with "already exists".
            server_conn.execute("SELECT pg_advisory_xact_lock(hashtext('odoo_migration:target_roles'))")
            return self._prepare_target_roles(source_conn, server_conn)

    def _prepare_target_roles(self, source_conn, server_conn):
        created = []
        roles = self.source_roles(source_conn)
        for source_role in roles:
            role = self._target_role(source_role)
            if _one(server_conn, "SELECT 1 AS x FROM pg_roles WHERE rolname = %s", (role,)):
                continue
            sql = "CREATE ROLE %s NOLOGIN NOSUPERUSER NOREPLICATION NOCREATEDB NOCREATEROLE" % quote_ident(
                role
            )
            if self.check_mode:
                self._would(sql)
            else:
                server_conn.execute(sql)
            created.append(role)
        granted = []
        for row in _all(
            source_conn,
            "SELECT g.rolname::text AS parent, m.rolname::text AS member FROM pg_auth_members a "
            "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
            "WHERE g.rolname = ANY(%s) AND m.rolname = ANY(%s) ORDER BY 1, 2",
            (roles, roles),
        ):
            parent, member = self._target_role(row["parent"]), self._target_role(row["member"])
            if _one(
                server_conn,
                "SELECT 1 AS x FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = %s AND m.rolname = %s",
                (parent, member),
            ):
                continue
            sql = "GRANT %s TO %s" % (quote_ident(parent), quote_ident(member))
            if self.check_mode:
                self._would(sql)
            else:
                server_conn.execute(sql)
            granted.append("%s in %s" % (member, parent))
        detail = []
        if created:
            detail.append("created " + ", ".join(created))
        if granted:
            detail.append("memberships " + ", ".join(granted))
        return bool(created or granted), "; ".join(detail) or None

    def prepare_target_database(self, source_conn, server_conn):
        if _exists_database(server_conn, self.target_database):
            return False, None
        info = _one(
            source_conn,
            "SELECT pg_encoding_to_char(d.encoding) AS encoding, d.datcollate, d.datctype, "
            "pg_get_userbyid(d.datdba) AS owner, d.datdba = 10 AS owner_super "
            "FROM pg_database d JOIN pg_roles a ON a.oid = d.datdba WHERE d.datname = current_database()",
        )
        owner = "" if info["owner_super"] else " OWNER %s" % quote_ident(self._target_role(info["owner"]))
        sql = "CREATE DATABASE %s%s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s" % (
            quote_ident(self.target_database),
            owner,
            quote_literal(info["encoding"]),
            quote_literal(info["datcollate"]),
            quote_literal(info["datctype"]),
        )
        if self.check_mode:
            return self._would(sql)
        server_conn.execute(sql)
        return True, sql

    def _client_env(self, endpoint):
        return _client.client_environment(endpoint, APPLICATION_NAME, self.client_pgpass_dir)

    def _dump_section(self, section):
        """pg_dump --section of the source, or the run fails naming pg_dump's own error."""
        with self._client_env(self.source) as env:
            dump = subprocess.run(
                self.pg_dump_command + ["--section=" + section, "--no-publications", "--no-subscriptions"],
                env=env,
                capture_output=True,
                check=False,
            )
        if dump.returncode != 0:
            self._fail(
                "pg_dump --section=%s of the source failed (exit %s): %s"
                % (section, dump.returncode, dump.stderr.decode(errors="replace")[-2000:])
            )
        return dump

    def restore_pre_data(self):
        """pg_dump --section=pre-data of the source piped into psql on the target, in one
        transaction together with the bookkeeping tables and the 'pre_data' state."""
        if self.check_mode:
            return self._would("restore the source's pre-data schema into the target database")
        dump = self._dump_section("pre-data")
        # Default privileges are post-data for pg_dump; the rest of post-data comes from the catalog.
        post = self._dump_section("post-data")
        default_privileges = _tenancy.default_privilege_lines(post.stdout.decode("utf-8", "surrogateescape"))
        text = _schema_options.strip_script(
            dump.stdout.decode("utf-8", "surrogateescape"), self.refused_options
        )
        text += "\n" + "\n".join(default_privileges) + "\n"
        schema = _tenancy.rename_script(text, self.role_map).encode("utf-8", "surrogateescape")
        # The dump creates odoo_migration too (the source's helper schema): its CREATE takes the helper
        # schema's lock first, like every other creator, in psql's one transaction.
        script = (_helper_schema.LOCK + ";\n").encode() + schema + ("\n" + BOOKKEEPING_SQL).encode()
        script += b"\nINSERT INTO odoo_migration.copy_state (key, value) VALUES ('pre_data', 'done');\n"
        with self._client_env(self.target) as env:
            restore = subprocess.run(
                self.psql_command + ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-"],
                input=script,
                env=env,
                capture_output=True,
                check=False,
            )
        if restore.returncode != 0:
            self._fail(
                "restoring the pre-data schema into the target failed (exit %s); nothing was kept "
                "(one transaction): %s"
                % (restore.returncode, restore.stderr.decode(errors="replace")[-2000:])
            )
        return True, "%d bytes of schema" % len(dump.stdout)
