# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The source connection every PostgreSQL module of the collection takes (_pg.endpoint_options(True)).
    DOCUMENTATION = r"""
options:
  source:
    description:
      - How the node that runs the module connects to the source database (the legacy server), as the
        migration's login (a superuser, never one of the application roles).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the source PostgreSQL server.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 5432
      user:
        description: Login role.
        type: str
        default: postgres
      password:
        description:
          - Password of O(source.user). Omit it to let libpq use C(PGPASSWORD) or C(~/.pgpass).
          - Never shown in output or error messages.
        type: str
      database:
        description: The migrated database.
        type: str
        required: true
      sslmode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
"""

    # The target connection of the modules that act on one migrated database on both sides
    # (_pg.endpoint_options(False)).
    TARGET = r"""
options:
  target:
    description:
      - How the node that runs the module connects to the target database (the new server), as a superuser.
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the target PostgreSQL server.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 5432
      user:
        description: Login role (a superuser).
        type: str
        default: postgres
      password:
        description:
          - Password of O(target.user). Never shown in output or error messages.
        type: str
      database:
        description: The database on the target; defaults to O(source.database).
        type: str
      sslmode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
"""

    # The source server of the modules that act on the whole server rather than one database
    # (_pg.endpoint_options(False, database_default="postgres")).
    SERVER = r"""
options:
  source:
    description:
      - How the node that runs the module connects to the legacy server, as the migration's login (a
        superuser).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 5432
      user:
        description: Login role.
        type: str
        default: postgres
      password:
        description:
          - Password of O(source.user). Omit it to let libpq use C(PGPASSWORD) or C(~/.pgpass).
          - Never shown in output or error messages.
        type: str
      database:
        description: The database the module's server-wide statements run in.
        type: str
        default: postgres
      sslmode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
"""
