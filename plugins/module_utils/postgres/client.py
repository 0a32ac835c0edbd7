# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment pg_dump and psql run in: the connection in PG* variables, the password in a
private pgpass file (PGPASSFILE) that lives only as long as the command.

PGPASSWORD would sit in the environment of the client and of everything between (docker exec, its
CLI), readable by any process of the same user for as long as it runs; a pgpass file of mode 0600 in a
directory of mode 0700, removed when the command ends, does not."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import shutil
import stat
import tempfile

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg

# Variables a caller's environment may carry that would override or leak the password.
DROPPED_VARIABLES = ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE")


def pgpass_field(value):
    """One field of a pgpass line: ':' and '\\' escaped by a backslash."""
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def pgpass_line(user, password):
    """The file's only line: any host, port and database (the command names those), this user."""
    return "*:*:*:%s:%s\n" % (pgpass_field(user), pgpass_field(password))


def check_pgpass_dir(path):
    """A directory the pgpass files may go into: ours, and no one else may write to it."""
    try:
        info = os.stat(path)
    except OSError:
        raise _pg.PgError(
            "client_pgpass_dir %s does not exist: create it (mode 0700), or leave the option unset for a "
            "private temporary directory" % path
        )
    if not stat.S_ISDIR(info.st_mode):
        raise _pg.PgError("client_pgpass_dir %s is not a directory" % path)
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _pg.PgError(
            "client_pgpass_dir %s must belong to this user and be writable by no one else "
            "(chmod 0700 it)" % path
        )


@contextlib.contextmanager
def client_environment(endpoint, application_name, pgpass_dir=None):
    """os.environ with the connection of endpoint; with a password, PGPASSFILE names a file holding it
    (in pgpass_dir, which a command running elsewhere sees at the same path, or in a temporary
    directory). The file is removed when the block ends, whatever happens in it."""
    env = dict((key, value) for key, value in os.environ.items() if key not in DROPPED_VARIABLES)
    env.update(
        PGHOST=endpoint.host,
        PGPORT=str(endpoint.port),
        PGUSER=endpoint.user,
        PGDATABASE=endpoint.database,
        PGSSLMODE=endpoint.sslmode,
        PGAPPNAME=application_name,
    )
    if not endpoint.password:
        yield env
        return
    own_dir = None
    if pgpass_dir:
        check_pgpass_dir(pgpass_dir)
        directory = pgpass_dir
    else:
        directory = own_dir = tempfile.mkdtemp(prefix="odoo-migration-pgpass-")
    handle, path = tempfile.mkstemp(prefix="pgpass-", dir=directory)
    try:
        with os.fdopen(handle, "w") as pgpass:
            pgpass.write(pgpass_line(endpoint.user, endpoint.password))
        env["PGPASSFILE"] = path
        yield env
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
