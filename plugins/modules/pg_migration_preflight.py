#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_migration_preflight
short_description: Read-only preflight of a PostgreSQL logical-replication migration
version_added: 0.1.0
author:
  - sysgenpro platform engineering (@sysgenpro)
description:
  - Connects to the B(source) PostgreSQL database of a migration and, optionally, to the B(target)
    PostgreSQL server, reads their catalogs and reports everything that would break a migration by
    native logical replication (publication, slot with exported snapshot, subscription, exact copy of
    every sequence) together with a concrete fix for each finding.
  - Changes nothing on either server. Everything is read in one C(REPEATABLE READ READ ONLY)
    transaction per server, with a statement timeout and the application name
    C(odoo_migration_preflight). C(changed) is always C(false).
  - Each finding (a I(concern)) has a stable C(id), a C(severity) (C(blocker), C(warning) or C(info)),
    a C(subject), a C(message) with the values found and a C(fix) (an SQL statement or a configuration
    line). The ids are listed in the collection's C(docs/preflight.md).
  - Tables with a primary key produce no concern. A table without one but with a usable unique index
    (unique, valid, not partial, not deferrable, no expression, all key columns C(NOT NULL)) is a
    C(warning) fixed by C(REPLICA IDENTITY USING INDEX). A table with neither is a C(blocker) or a
    C(warning), as O(replica_identity_policy) says.
  - Runs where psycopg 3 is installed, usually the control node (delegated to C(localhost)), and reaches
    the servers over the network.
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
options:
  target:
    description:
      - How to connect to the target PostgreSQL server. Omit it to check the source alone; then
        RV(target) is C(null) and extensions report C(on_target=null).
      - The target database usually does not exist yet, so O(target.database) defaults to C(postgres);
        the database named like O(source.database) is looked up on the target.
    type: dict
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
        description: Login role on the target; the migration needs a superuser there.
        type: str
        default: postgres
      password:
        description:
          - Password of O(target.user). Never shown in output or error messages.
        type: str
      database:
        description: Database to connect to on the target server.
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
  instance:
    description:
      - The instance the database belongs to (the inventory host of its VM), on a target other instances
        may share. With O(target), every name it needs there (the database, its roles as O(role_map) names
        them) that another instance holds, or a database that exists and no instance claimed, is a
        C(tenant_collision) blocker naming the fix; its own earlier copy is no concern.
    type: str
  application_role:
    description:
      - The role the instance's Odoo logs in with on the source (its C(db_user)); with O(instance) and
        without O(role_map), it is renamed to C(<role>_<instance>) on the target.
    type: str
  role_map:
    description:
      - Source role name to target role name (the plan's C(target_roles)); used with O(instance).
      - Omitted, the application role and every role of the database that cannot log in get
        C(<role>_<instance>), and login roles keep their names; RV(target_roles) returns that map.
    type: dict
  wal_sample_seconds:
    description:
      - How long to sample the source's WAL rate (C(pg_current_wal_lsn()) read twice this many seconds apart).
      - C(0) disables sampling; RV(wal_rate_bytes_per_second) is then C(null).
    type: float
    default: 3
  long_transaction_seconds:
    description:
      - Transactions open longer than this on the source are reported (RV(long_transactions), concern
        C(long_transaction)), since creating the migration's slot waits for every running transaction.
    type: int
    default: 300
  wal_budget_bytes:
    description:
      - How much WAL the source may retain for the migration (the free disk under C(pg_wal) you grant it).
      - When given, C(max_slot_wal_keep_size) is checked against it and the sampled WAL rate is turned into
        how long the budget lasts. When omitted only the WAL rate is reported.
    type: int
  replica_identity_policy:
    description:
      - What a table with neither a primary key nor a usable unique index is.
      - C(refuse) makes it a C(blocker) (add a primary key first).
      - C(full) makes it a C(warning) fixed by C(ALTER TABLE ... REPLICA IDENTITY FULL) (every UPDATE and
        DELETE then logs the whole old row).
    type: str
    choices: [full, refuse]
    default: refuse
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module never changes anything; check mode runs the same read-only queries.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Sequences are read with C(SELECT last_value, is_called) per sequence, which needs C(SELECT) on them;
    unreadable ones are reported (C(sequence_unreadable)).
  - A server that cannot be reached or refuses the login makes the module fail with a message naming
    host, port, user and database and what to check (address, C(pg_hba.conf), credentials); never the
    password.
seealso:
  - name: Logical replication restrictions
    description: What PostgreSQL's logical replication does not carry.
    link: https://www.postgresql.org/docs/current/logical-replication-restrictions.html
  - module: community.postgresql.postgresql_info
"""

EXAMPLES = r"""
- name: Preflight the migration of acme from the legacy VM to the new server
  sysgenpro.odoo_migration.pg_migration_preflight:
    source:
      host: legacy-vm-1.example.net
      user: postgres
      password: "{{ vault_legacy_pg_password }}"
      database: acme
    target:
      host: pg18.example.net
      user: postgres
      password: "{{ vault_target_pg_password }}"
    wal_budget_bytes: "{{ 20 * 1024 * 1024 * 1024 }}"
  delegate_to: localhost
  register: preflight

- name: Stop when something blocks the migration
  ansible.builtin.assert:
    that: preflight.summary.ready
    fail_msg: >-
      {{ preflight.concerns | selectattr('severity', 'eq', 'blocker') | map(attribute='fix') | list }}

- name: Accept REPLICA IDENTITY FULL for tables without any key, source only, no WAL sampling
  sysgenpro.odoo_migration.pg_migration_preflight:
    source:
      host: 127.0.0.1
      port: 5417
      password: "{{ lookup('ansible.builtin.file', 'secrets/source-pg-password') }}"
      database: globex
      sslmode: require
    replica_identity_policy: full
    wal_sample_seconds: 0
  delegate_to: localhost
  register: preflight_source
"""

RETURN = r"""
server:
  description: The source server and database.
  returned: success
  type: dict
  contains:
    version_num:
      description: C(server_version_num).
      type: int
      sample: 170006
    version:
      description: C(version()).
      type: str
      sample: PostgreSQL 17.6 (Debian 17.6-0+deb13u1) on x86_64-pc-linux-gnu, compiled by gcc
    version_short:
      description: C(server_version).
      type: str
      sample: 17.6 (Debian 17.6-0+deb13u1)
    database:
      description: The database connected to.
      type: str
      sample: acme
    in_recovery:
      description: Whether the server is a standby.
      type: bool
      sample: false
    encoding:
      description: Encoding of the database.
      type: str
      sample: UTF8
    lc_collate:
      description: C(datcollate) of the database.
      type: str
      sample: C.UTF-8
    lc_ctype:
      description: C(datctype) of the database.
      type: str
      sample: C.UTF-8
    collation_provider:
      description: C(libc), C(icu) or C(builtin) (C(libc) before PostgreSQL 15).
      type: str
      sample: libc
    locale:
      description: ICU or builtin locale of the database, C(null) for libc.
      type: str
      sample: null
    collation_version:
      description: C(datcollversion), the collation library version recorded when the database was created.
      type: str
      sample: "2.41"
    collation_actual_version:
      description: The version the server's library has now (C(pg_database_collation_actual_version)).
      type: str
      sample: "2.41"
    database_bytes:
      description: C(pg_database_size).
      type: int
      sample: 74448403
    wal_level:
      description: C(wal_level).
      type: str
      sample: replica
    max_replication_slots:
      description: C(max_replication_slots).
      type: int
      sample: 10
    max_wal_senders:
      description: C(max_wal_senders).
      type: int
      sample: 10
    max_slot_wal_keep_size:
      description: C(max_slot_wal_keep_size), C(-1) for unlimited, else megabytes with unit.
      type: str
      sample: "-1"
    max_logical_replication_workers:
      description: C(max_logical_replication_workers).
      type: int
      sample: 4
    max_sync_workers_per_subscription:
      description: C(max_sync_workers_per_subscription).
      type: int
      sample: 2
    max_worker_processes:
      description: C(max_worker_processes).
      type: int
      sample: 8
    replication_slots_used:
      description: Replication slots that exist on the server.
      type: int
      sample: 0
    wal_senders_used:
      description: WAL senders running (rows of C(pg_stat_replication)).
      type: int
      sample: 0
    user:
      description: The login role and its relevant attributes.
      type: dict
      sample: {name: postgres, superuser: true, replication: true, createdb: true, read_all_stats: true}
target:
  description:
    - The target server, same keys as RV(server) plus C(database_exists) (a database named like the
      source's exists on the target). C(null) without O(target).
  returned: success
  type: dict
  sample: {version_num: 180001, wal_level: logical, database: postgres, database_exists: false}
tables:
  description: Every ordinary and partitioned table of the source database outside the system schemas.
  returned: success
  type: list
  elements: dict
  contains:
    schema:
      description: Schema.
      type: str
      sample: public
    name:
      description: Table name.
      type: str
      sample: lab_document_partner_rel
    bytes:
      description: C(pg_total_relation_size) (table, indexes, TOAST).
      type: int
      sample: 90112
    rows_estimate:
      description: C(reltuples), C(null) if never analysed.
      type: int
      sample: 1200
    unlogged:
      description: Whether the table is C(UNLOGGED).
      type: bool
      sample: false
    partitioned:
      description: Whether it is a partitioned table (its rows live in its partitions).
      type: bool
      sample: false
    replica_identity:
      description:
        - How logical replication identifies its rows once the fixes in RV(concerns) are applied.
        - C(primary_key); C(unique_index) (see C(replica_identity_index)); C(full) (C(REPLICA IDENTITY FULL)
          is already set); C(none) (no primary key and no usable unique index).
      type: str
      sample: unique_index
    replica_identity_index:
      description: The unique index when C(replica_identity) is C(unique_index), else C(null).
      type: str
      sample: lab_document_partner_rel_uniq
    replica_identity_setting:
      description: The table's current setting, C(default), C(nothing), C(full) or C(index).
      type: str
      sample: default
sequences:
  description: Every sequence of the source database outside the system schemas.
  returned: success
  type: list
  elements: dict
  contains:
    schema:
      description: Schema.
      type: str
      sample: public
    name:
      description: Sequence name.
      type: str
      sample: ir_sequence_001
    owned_by:
      description:
        - C(schema.table.column) that owns it (C(OWNED BY) or identity column).
        - C(null) for a standalone sequence (Odoo's C(ir_sequence_NNN)).
      type: str
      sample: null
    last_value:
      description: C(last_value), C(null) when the sequence could not be read.
      type: int
      sample: 42
    is_called:
      description: C(is_called).
      type: bool
      sample: true
    data_type:
      description: C(smallint), C(integer) or C(bigint).
      type: str
      sample: bigint
    increment:
      description: Increment.
      type: int
      sample: 1
extensions:
  description: Extensions installed in the source database.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Extension name.
      type: str
      sample: unaccent
    version:
      description: Installed version on the source.
      type: str
      sample: "1.1"
    schema:
      description: Schema it lives in.
      type: str
      sample: public
    on_target:
      description: Whether the target server can install it; C(null) without O(target).
      type: bool
      sample: true
    target_version:
      description: The target's default version of it, C(null) if absent or without O(target).
      type: str
      sample: "1.1"
roles:
  description:
    - The roles the source database uses (owners, grantees and their direct members), whether each can
      log in, and its name on the target (C(target_name)).
  returned: success
  type: list
  elements: dict
  sample: [{name: odoo, can_login: true, target_name: odoo_legacy_vm_1}]
target_roles:
  description: The role map in force with O(instance) (given, or the default rule); null without it.
  returned: success
  type: dict
  sample: {odoo: odoo_legacy_vm_1, lab_reporting: lab_reporting_legacy_vm_1}
large_objects:
  description: Number of large objects in the source database.
  returned: success
  type: int
  sample: 0
schema_options_refused:
  description:
    - Column options and storage parameters of the source that the target refuses, each tried on the target
      in a transaction that is rolled back; one entry per C(scope) (column, table, index, view) and C(option),
      with the target's C(error), how many C(objects) carry it and a few C(examples). Null without O(target).
  returned: success
  type: list
  elements: dict
  sample:
    - scope: column
      option: pg_attver
      error: unrecognized parameter "pg_attver"
      objects: 2412
      examples: [public.res_partner.id]
slots:
  description:
    - Replication slots on the source server (C(pg_replication_slots)), with C(retained_bytes) of WAL.
  returned: success
  type: list
  elements: dict
  sample:
    - {slot_name: old_slot, slot_type: logical, active: false, wal_status: reserved, retained_bytes: 16777216}
publications:
  description: Publications in the source database, with their number of C(tables).
  returned: success
  type: list
  elements: dict
  sample:
    - {name: old_pub, all_tables: false, insert: true, update: true, delete: true, truncate: true, tables: 1}
subscriptions:
  description: Subscriptions of the source database; C(null) if the login may not see them.
  returned: success
  type: list
  elements: dict
  sample: []
long_transactions:
  description: Client transactions on the source server open longer than O(long_transaction_seconds).
  returned: success
  type: list
  elements: dict
  sample:
    - {pid: 4242, user: odoo, database: acme, state: idle in transaction, age_seconds: 912.4, query: SELECT 1}
prepared_transactions:
  description: Prepared transactions on the source server (C(pg_prepared_xacts)).
  returned: success
  type: list
  elements: dict
  sample: []
wal_rate_bytes_per_second:
  description: WAL the source wrote per second during the sample; C(null) if not sampled.
  returned: success
  type: float
  sample: 15321.7
concerns:
  description: Findings, blockers first, then warnings, then info.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Stable identifier of the kind of finding (see docs/preflight.md).
      type: str
      sample: replica_identity_index
    severity:
      description: C(blocker), C(warning) or C(info).
      type: str
      sample: warning
    subject:
      description: The object concerned (table, sequence, setting, role ...).
      type: str
      sample: public.lab_document_partner_rel
    message:
      description: What was found, with the values.
      type: str
      sample: >-
        public.lab_document_partner_rel has no primary key but the unique index ... can identify its rows
    fix:
      description: The concrete fix (SQL or configuration).
      type: str
      sample: >-
        ALTER TABLE public.lab_document_partner_rel
        REPLICA IDENTITY USING INDEX lab_document_partner_rel_uniq;
summary:
  description: Counts.
  returned: success
  type: dict
  contains:
    counts:
      description: Concerns per severity.
      type: dict
      sample: {blocker: 2, warning: 3, info: 1}
    blockers:
      description: Number of blockers.
      type: int
      sample: 2
    warnings:
      description: Number of warnings.
      type: int
      sample: 3
    ready:
      description: True when there is no blocker.
      type: bool
      sample: false
    tables:
      description: Number of tables.
      type: int
      sample: 812
    sequences:
      description: Number of sequences.
      type: int
      sample: 790
    standalone_sequences:
      description: Number of sequences owned by no column.
      type: int
      sample: 14
    database_bytes:
      description: Size of the source database.
      type: int
      sample: 74448403
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres.preflight import (
    REPLICA_IDENTITY_POLICIES,
    run_preflight,
)


def argument_spec():
    return dict(
        source=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        target=dict(type="dict", options=_pg.endpoint_options(False, "postgres")),
        wal_sample_seconds=dict(type="float", default=3),
        long_transaction_seconds=dict(type="int", default=300),
        wal_budget_bytes=dict(type="int"),
        replica_identity_policy=dict(type="str", default="refuse", choices=list(REPLICA_IDENTITY_POLICIES)),
        instance=dict(type="str"),
        application_role=dict(type="str"),
        role_map=dict(type="dict"),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _pg.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg 3)"), exception=_pg.PSYCOPG_IMPORT_ERROR)
    params = module.params
    if params["wal_sample_seconds"] < 0:
        module.fail_json(msg="wal_sample_seconds must be 0 (no sampling) or more")
    if params["long_transaction_seconds"] < 0:
        module.fail_json(msg="long_transaction_seconds must be 0 or more")
    if params["wal_budget_bytes"] is not None and params["wal_budget_bytes"] <= 0:
        module.fail_json(msg="wal_budget_bytes must be more than 0")
    source = _pg.PgEndpoint.from_params(params["source"])
    target = _pg.PgEndpoint.from_params(params["target"], "postgres") if params["target"] else None
    try:
        result = run_preflight(
            source,
            target,
            wal_sample_seconds=params["wal_sample_seconds"],
            long_transaction_seconds=params["long_transaction_seconds"],
            wal_budget_bytes=params["wal_budget_bytes"],
            replica_identity_policy=params["replica_identity_policy"],
            instance=params["instance"],
            application_role=params["application_role"],
            role_map=params["role_map"],
        )
    except _pg.PgError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
