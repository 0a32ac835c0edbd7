# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One server as the engine talks to it: statements that fail say where, without secrets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg


class Side:
    """One server of the pair: its endpoint, connection, system identifier, secrets to redact."""

    def __init__(self, name, endpoint, conn, secrets):
        self.name = name
        self.endpoint = endpoint
        self.conn = conn
        self.secrets = secrets
        self.sysid = None
        self.version_num = None

    def describe(self):
        return "%s (%s)" % (self.name, self.endpoint.describe())

    def run(self, what, statement, params=None, secret=False):
        """Execute and return every row (dicts); errors become PgError without secrets. With secret
        (a statement that carries a password), its text stays out of the server log."""
        try:
            if secret:
                cursor = _pg.execute_with_secret(self.conn, statement, params)
            else:
                cursor = self.conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
        except _pg.psycopg.Error as error:
            raise _pg.PgError(
                "%s failed on the %s: %s" % (what, self.describe(), _pg.error_text(error, self.secrets))
            ) from None

    def one(self, what, statement, params=None):
        rows = self.run(what, statement, params)
        return rows[0] if rows else None
