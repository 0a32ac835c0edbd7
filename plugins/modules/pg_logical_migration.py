#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_logical_migration
short_description: Copy a PostgreSQL database under a slot's snapshot and follow it with a native subscription
version_added: 0.1.0
author:
  - sysgenpro platform engineering (@sysgenpro)
description:
  - Brings one source database to the C(replicating) state on the target server, running every phase
    not done yet and skipping the others, so a re-run after a crash resumes and a re-run on a replicating
    pair changes nothing.
  - "Source: helper schema C(odoo_migration) (C(heartbeat), C(marker)), replica identity fixes
    (C(USING INDEX) for a usable unique index, C(FULL) or refusal by O(replica_identity_policy)),
    C(CREATE PUBLICATION odoo_migration FOR ALL TABLES)."
  - "Target: the roles owning or granted on source objects (C(NOLOGIN), never superuser or replication),
    the database with the source's encoding, C(LC_COLLATE) and C(LC_CTYPE) from C(template0), the
    pre-data schema (O(pg_dump_command) piped into O(psql_command) in one transaction), then primary keys
    and replica-identity indexes."
  - "Copy: a detached process creates the slot with C(CREATE_REPLICATION_SLOT ... LOGICAL pgoutput
    (SNAPSHOT 'export')) and holds its snapshot open; O(jobs) workers copy every table in binary COPY
    under C(SET TRANSACTION SNAPSHOT), largest first, tables above O(chunk_rows) rows split by id ranges.
    Each chunk commits with its row in C(odoo_migration.copy_progress) on the target; a table copied
    whole (8 MiB or more) is truncated and loaded with C(COPY FREEZE) in that transaction."
  - "Then secondary indexes and constraints in parallel, foreign keys added C(NOT VALID) and validated in
    parallel, triggers, C(ANALYZE) of each table in parallel, and
    C(CREATE SUBSCRIPTION odoo_migration) on the slot without initial copy."
  - If the copy is incomplete and the snapshot holder is gone, the module fails and says to restart
    from scratch (O(state=absent) with O(drop_target_database=true)); it never copies the rest under a
    newer snapshot.
  - O(state=absent) drops the subscription, the slot, the publication, the source's helper schema and the
    target's copy bookkeeping (and the target database with O(drop_target_database)).
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
  - pg_dump and psql of the target's major version, reachable through O(pg_dump_command) and O(psql_command)
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql
  - ansible.builtin.action_common_attributes
  - sysgenpro.odoo_migration.tenancy
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  target:
    description:
      - How the control node connects to the target PostgreSQL server (a superuser).
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
        description: Login role on the target; a superuser.
        type: str
        default: postgres
      password:
        description:
          - Password of O(target.user). Never shown in output or error messages.
        type: str
      database:
        description: Maintenance database to connect to on the target server.
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
  target_database:
    description: Name of the database on the target; defaults to O(source.database).
    type: str
  source_conninfo_from_target:
    description:
      - How the target server reaches the source for the subscription. User, password and database
        default to those of O(source). The password goes into C(CREATE SUBSCRIPTION) only and is
        removed from every returned value and error.
    type: dict
    suboptions:
      host:
        description: Host name of the source as the target resolves it; defaults to O(source.host).
        type: str
      port:
        description: Port of the source as the target reaches it; defaults to O(source.port).
        type: int
      user:
        description:
          - Replication login on the source; defaults to O(source.user). O(replication_login) replaces it.
        type: str
      password:
        description: Its password; defaults to O(source.password).
        type: str
      sslmode:
        description: libpq C(sslmode) for the subscription.
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
  replication_login:
    description:
      - The login the target's subscription replicates as on the source, created for the migration with
        C(LOGIN REPLICATION) and C(CONNECT) on O(source.database), nothing else; its password is sent as a
        SCRAM verifier and a comment on the role marks it as the migration's.
      - It replaces the user and password of O(source_conninfo_from_target), so the migration's own login
        (often a superuser) never reaches the target's catalog.
      - A role of that name that is not such a login fails the run before anything is changed.
      - The source's C(pg_hba.conf) must let it connect to O(source.database) from the target (role
        P(sysgenpro.odoo_migration.pg_replicate#role) adds that line).
      - With O(state=absent) the login is dropped, or kept while another database still lets it connect.
        M(sysgenpro.odoo_migration.pg_migration_finalize) drops it after a cutover (its option
        C(replication_logins)).
    type: dict
    suboptions:
      name:
        description: Role name, lower-case letters, digits and C(_).
        type: str
        required: true
      password:
        description: Its password; never written anywhere but the role's SCRAM verifier and the subscription.
        type: str
        required: true
  slot_name:
    description:
      - Name of the logical replication slot on the source.
      - Defaults to C(odoo_migration_<database>) (the source database's name, lower-case, other
        characters than C([a-z0-9_]) as C(_)), the slot M(sysgenpro.odoo_migration.pg_cutover) and
        M(sysgenpro.odoo_migration.pg_migration_finalize) look for.
    type: str
  jobs:
    description: Parallel copy and index workers.
    type: int
    default: 4
  chunk_rows:
    description:
      - Tables with an integer primary key and more rows than this are copied in id ranges of about this
        many rows.
    type: int
    default: 100000
  replica_identity_policy:
    description:
      - What to do with a table that has neither a primary key nor a usable unique index.
      - C(full) sets C(REPLICA IDENTITY FULL); C(refuse) fails and names them.
    type: str
    default: refuse
    choices: [full, refuse]
  schema_option_policy:
    description:
      - What to do with column options and storage parameters of the source's schema that the target
        refuses (a newer minor release's, an extension's or a fork's; each distinct option is tried on
        the target in a transaction that is rolled back).
      - C(drop) leaves them out on the target and lists each in RV(schema_options_dropped); C(refuse)
        fails before anything is changed and names them.
    type: str
    default: drop
    choices: [drop, refuse]
  instance:
    description:
      - The instance this database belongs to (the inventory host of its VM). On a target that several
        instances share, the database and the roles it needs (named by O(role_map)) are claimed for it in
        the target's maintenance database (C(odoo_migration.tenant_claim)), CONNECT on the database is given
        to its roles only (never to C(PUBLIC)), and a name another instance holds, or a database that exists
        and nobody claimed, fails the run before anything is changed, naming the fix.
      - Unset, nothing is claimed and CONNECT is left as PostgreSQL creates it (a target of its own).
      - With O(state=absent) and O(drop_target_database), the database's claim is released.
    type: str
  pg_dump_command:
    description:
      - argv of the pg_dump to run (the target's major version). The connection is passed in the
        environment (C(PGHOST), C(PGPORT), C(PGUSER), C(PGDATABASE)) and the password in a private pgpass
        file named by C(PGPASSFILE) (see O(client_pgpass_dir)), never in C(PGPASSWORD) or on a command line.
      - A command that runs elsewhere (C(docker exec -e PGUSER -e PGDATABASE -e PGPASSFILE ...)) forwards
        them and may override host and port with C(-h)/C(-p).
    type: list
    elements: str
    default: [pg_dump]
  psql_command:
    description:
      - argv of the psql that restores into the target; the connection is passed as for
        O(pg_dump_command).
    type: list
    elements: str
    default: [psql]
  client_pgpass_dir:
    description:
      - Directory for the pgpass file of O(pg_dump_command) and O(psql_command) (mode 0600, one line for the
        endpoint's user, removed as soon as the command ends). It must belong to the user running the module
        and be writable by no one else.
      - Unset, each command gets a new private temporary directory on the host running the module.
      - A command that runs in a container needs the directory bind-mounted at the same path and
        C(PGPASSFILE) forwarded.
    type: path
  drop_target_database:
    description: With O(state=absent), also drop the target database (needed to restart a copy from scratch).
    type: bool
    default: false
  state:
    description: C(replicating) runs every phase not done yet; C(absent) undoes everything.
    type: str
    default: replicating
    choices: [replicating, absent]
"""

EXAMPLES = r"""
- name: Copy acme to the target and follow it
  sysgenpro.odoo_migration.pg_logical_migration:
    source:
      host: 127.0.0.1
      port: 5441
      user: odoo_migration
      password: "{{ odoo_migration_source_pg_password }}"
      database: acme
    target:
      host: 127.0.0.1
      port: 5418
      password: "{{ odoo_migration_target_pg_password }}"
    source_conninfo_from_target:
      host: legacy-vm-1
      port: 5432
    replication_login:
      name: odoo_migration_forward_legacy_vm_1
      password: "{{ lookup('ansible.builtin.password', secrets_dir ~ '/vm-1/forward-login-password') }}"
    jobs: 4
    replica_identity_policy: full
    # Bind-mounted into odoo-mig-target-pg at the same path.
    client_pgpass_dir: /var/lib/odoo-migration/pgpass
    pg_dump_command:
      - docker
      - exec
      - -i
      - -e
      - PGPASSFILE
      - -e
      - PGUSER
      - -e
      - PGDATABASE
      - odoo-mig-target-pg
      - pg_dump
      - -h
      - legacy-vm-1
      - -p
      - "5432"
    psql_command:
      - docker
      - exec
      - -i
      - -e
      - PGPASSFILE
      - -e
      - PGUSER
      - -e
      - PGDATABASE
      - odoo-mig-target-pg
      - psql
      - -h
      - 127.0.0.1
      - -p
      - "5432"
  delegate_to: localhost
  no_log: false

- name: Undo it
  sysgenpro.odoo_migration.pg_logical_migration:
    source: "{{ source_endpoint }}"
    target: "{{ target_endpoint }}"
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
steps:
  description: Every step run or skipped, in order, with its duration in seconds.
  returned: always
  type: list
  elements: dict
  sample: [{step: "copy data (parallel COPY binary)", seconds: 0.9, changed: true, detail: {}}]
copy:
  description:
    - Copy statistics of this run (chunks, chunks_skipped, chunks_copied, rows, bytes, seconds,
      rows_per_second); null when nothing was copied.
  returned: state=replicating
  type: dict
  sample:
    chunks: 572
    chunks_skipped: 0
    chunks_copied: 572
    rows: 103988
    seconds: 0.86
    rows_per_second: 120775
replication_login:
  description: The login the subscription replicates as on the source (O(replication_login.name)).
  returned: when O(replication_login) is given and O(state=replicating)
  type: str
  sample: odoo_migration_forward_legacy_vm_1
copy_action:
  description: What the copy phase decided, one of start, resume, copied.
  returned: when the copy phase was reached
  type: str
  sample: resume
replica_identity_fixes:
  description: Replica identity statements run (or, in check mode, to run) on the source.
  returned: state=replicating
  type: list
  elements: str
  sample: ["ALTER TABLE public.lab_m2m REPLICA IDENTITY USING INDEX lab_m2m_unique"]
schema_options_dropped:
  description:
    - Options of the source's schema the target refuses, left out on the target
      (O(schema_option_policy=drop)), one entry per scope and option name; empty when the target accepts them.
    - C(scope) is column, table, index or view; C(objects) counts the objects carrying the option and
      C(examples) names a few; C(error) is what the target said.
  returned: state=replicating
  type: list
  elements: dict
  sample:
    - scope: column
      option: pg_attver
      error: unrecognized parameter "pg_attver"
      objects: 2412
      examples: [public.res_partner.id]
large_objects:
  description:
    - Large objects copied under the slot's snapshot (C(objects) on the source, C(copied), C(removed),
      C(bytes_copied)); the cutover carries their later changes inside its fence.
  returned: when the copy ran in this run
  type: dict
  sample: {objects: 1, copied: 1, removed: 0, bytes_copied: 27}
target_roles:
  description:
    - Each role the database uses on the source and its name on the target (O(role_map)).
  returned: state=replicating
  type: dict
  sample: {odoo: odoo_legacy_vm_1, lab_reporting: lab_reporting_legacy_vm_1, lab_bi: lab_bi}
journal:
  description:
    - What the audit callback keeps in the host's journal (the record's C(details)) - the target database,
      the options left out (C(scope), C(option), C(objects)), the large objects copied in this run, the
      instance and the target's name of each of its roles (C(target_roles)).
  returned: state=replicating
  type: dict
  sample:
    database: acme
    schema_options_dropped: [{scope: column, option: pg_attver, objects: 2412}]
    large_objects: {objects: 1, copied: 1, removed: 0, bytes_copied: 27}
    instance: legacy-vm-1
    target_roles: {odoo: odoo_legacy_vm_1}
would:
  description: In check mode, what the module would do.
  returned: always
  type: list
  elements: str
  sample: ["CREATE PUBLICATION odoo_migration FOR ALL TABLES"]
actions:
  description: With state=absent, what was dropped.
  returned: state=absent
  type: list
  elements: str
  sample: ["drop subscription", "drop slot odoo_migration"]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import replication as _rep
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.cutover import forward_slot


def argument_spec():
    return dict(
        source=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        target=dict(type="dict", required=True, options=_pg.endpoint_options(False, "postgres")),
        target_database=dict(type="str"),
        source_conninfo_from_target=dict(
            type="dict",
            options=dict(
                host=dict(type="str"),
                port=dict(type="int"),
                user=dict(type="str"),
                password=dict(type="str", no_log=True),
                sslmode=dict(type="str", choices=list(_pg.SSLMODES)),
            ),
        ),
        replication_login=dict(
            type="dict",
            options=dict(
                name=dict(type="str", required=True),
                password=dict(type="str", required=True, no_log=True),
            ),
        ),
        slot_name=dict(type="str"),
        jobs=dict(type="int", default=_rep.DEFAULT_JOBS),
        chunk_rows=dict(type="int", default=_rep.DEFAULT_CHUNK_ROWS),
        replica_identity_policy=dict(type="str", default="refuse", choices=["full", "refuse"]),
        schema_option_policy=dict(type="str", default="drop", choices=["drop", "refuse"]),
        pg_dump_command=dict(type="list", elements="str", default=["pg_dump"]),
        psql_command=dict(type="list", elements="str", default=["psql"]),
        client_pgpass_dir=dict(type="path"),
        drop_target_database=dict(type="bool", default=False),
        instance=dict(type="str"),
        role_map=dict(type="dict", default={}),
        state=dict(type="str", default="replicating", choices=["replicating", "absent"]),
    )


def subscription_conninfo(params, source):
    given = dict(params["source_conninfo_from_target"] or {})
    login = params["replication_login"]
    if login:
        given.update(user=login["name"], password=login["password"])
    return _rep.conninfo(
        given.get("host") or source.host,
        given.get("port") or source.port,
        given.get("user") or source.user,
        given.get("password") or source.password,
        source.database,
        given.get("sslmode"),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _pg.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg 3)"), exception=_pg.PSYCOPG_IMPORT_ERROR)
    params = module.params
    if params["jobs"] < 1 or params["chunk_rows"] < 1:
        module.fail_json(msg="jobs and chunk_rows must be at least 1")
    if not params["pg_dump_command"] or not params["psql_command"]:
        module.fail_json(msg="pg_dump_command and psql_command must not be empty")
    source = _pg.PgEndpoint.from_params(params["source"])
    target = _pg.PgEndpoint.from_params(params["target"], "postgres")
    given = params["source_conninfo_from_target"] or {}
    login = params["replication_login"] or {}
    secrets = [
        s for s in (source.password, target.password, given.get("password"), login.get("password")) if s
    ]
    slot = params["slot_name"] or forward_slot(params["source"]["database"])
    try:
        if params["state"] == "absent":
            changed, steps, actions = _rep.remove(
                source,
                target,
                slot=slot,
                target_database=params["target_database"],
                drop_target_database=params["drop_target_database"],
                check_mode=module.check_mode,
                instance=params["instance"],
                replication_login=login.get("name"),
            )
            module.exit_json(
                changed=changed, steps=steps, actions=actions, would=actions if module.check_mode else []
            )
        migration = _rep.Migration(
            source,
            target,
            subscription_conninfo(params, source),
            jobs=params["jobs"],
            chunk_rows=params["chunk_rows"],
            replica_identity_policy=params["replica_identity_policy"],
            pg_dump_command=params["pg_dump_command"],
            psql_command=params["psql_command"],
            slot=slot,
            target_database=params["target_database"],
            check_mode=module.check_mode,
            subscription_password=given.get("password"),
            schema_option_policy=params["schema_option_policy"],
            instance=params["instance"],
            role_map=params["role_map"],
            replication_login=params["replication_login"],
            client_pgpass_dir=params["client_pgpass_dir"],
        )
        result = migration.run()
    except (_pg.PgError, _pg.psycopg.Error) as error:
        module.fail_json(msg=_pg.redact(str(error), [v for s in secrets for v in _rep.secret_variants(s)]))
    result.pop("state", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
