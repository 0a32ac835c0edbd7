#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_cutover
short_description: Fenced PostgreSQL cutover with marker proof, exact sequences and a reverse path
version_added: 0.1.0
author:
  - sysgenpro platform engineering (@sysgenpro)
description:
  - Moves the writing side of a logically replicated database from the server applications write to now
    (the B(old) side) to its subscriber (the B(new) side), without losing an acknowledged commit.
  - With O(direction=forward) the old side is the source and the new side the target; the reverse path
    (publication C(odoo_migration_reverse) and slot C(odoo_migration_reverse_<database>) on the target,
    subscription C(odoo_migration_reverse) on the source, C(origin=none), C(copy_data=false)) is built
    while both sides are quiet, then the forward subscription C(odoo_migration) is dropped.
  - With O(direction=reverse) (rollback) the old side is the target; its application roles are fenced, a
    marker travels over the reverse subscription to the source, sequences are copied target to source, the
    reverse subscription is dropped and the source's application roles are restored. The forward direction
    is not rebuilt unless O(reestablish_forward=true).
  - "Steps, each timed against O(budgets): C(prepare) (helper schema C(odoo_migration) on both sides),
    C(gate) (slot lag in bytes, subscription running, a probe marker's round trip), C(fence) (application
    roles C(NOLOGIN) and C(default_transaction_read_only=on), their previous attributes kept in
    C(odoo_migration.fenced_roles), a grace for in-flight transactions, then C(pg_terminate_backend)),
    C(marker) (a row committed on the old side), C(drain) (until the marker is visible on the new side),
    C(large_objects) (every large object whose content, owner or grants differ copied from the fenced old
    side, extra ones removed; replication does not carry them, and C(prepare) already pre-synced them),
    C(sequences) (every sequence, standalone ones included, read on the fenced old side and set with
    C(setval(last_value, is_called)) on the new side in one transaction, owned ones guarded against
    C(max(column))), C(return_path), C(drop_path) (the point of no return), C(unfence)."
  - Until C(drop_path) starts, a failure or an exceeded budget undoes the return path, restores the old
    side's role attributes exactly and leaves the replication in use running; the module then fails with
    the report. The application switch is not part of this module; RV(write_unavailable_seconds) counts from
    the start of the fence to the end of the module and the caller adds its switch.
  - After the switch, outside the window, every materialized view populated on the old side is refreshed
    on the new side (RV(materialized_views)), and every other login role the database uses gets its
    login, password (hash) and expiry from the old side where the copy left it C(NOLOGIN)
    (RV(login_roles)); application roles are left to the application cutover.
  - A second run after success reports C(changed=false) (RV(state) C(done)).
requirements:
  - psycopg >= 3.1 (psycopg 3) on the host that runs the module
options:
  application_roles:
    description:
      - The roles the applications log in with on the old side (for Odoo the C(db_user) of C(odoo.conf)).
      - Fencing is cluster-wide (roles are), so every session of these roles on the old server ends.
      - Always the source's names; on the target they are renamed by O(role_map).
      - Superusers, replication roles and the migration's own login are refused.
    type: list
    elements: str
    required: true
  direction:
    description: C(forward) cuts over to the target, C(reverse) rolls back to the source.
    type: str
    choices: [forward, reverse]
    default: forward
  source_conninfo_from_target:
    description:
      - libpq connection string with which the target reaches the source; used when
        O(reestablish_forward=true) builds the forward subscription again. Its password is never returned.
    type: str
  target_conninfo_from_source:
    description:
      - libpq connection string with which the source reaches the target, for the reverse subscription.
        Required with O(direction=forward). Its password is never returned or logged.
    type: str
  grace_seconds:
    description:
      - How long in-flight transactions of the application roles may finish after the fence, before their
        sessions are terminated. Part of the C(fence) budget.
    type: float
    default: 2
  budgets:
    description:
      - Seconds per step, keys C(prepare), C(gate), C(fence), C(marker), C(drain), C(large_objects),
        C(sequences), C(return_path), C(drop_path), C(unfence), and C(total) (the window from the fence to
        the end).
      - Unset keys keep their defaults (120, 60, 10, 2, 10, 10, 10, 15, 15, 5 and 30).
    type: dict
    default: {}
  max_lag_bytes:
    description: The gate's limit on the replication slot's lag (current WAL position minus confirmed flush).
    type: int
    default: 16777216
  max_lag_seconds:
    description: The gate's limit on a probe marker's round trip from the old to the new side.
    type: float
    default: 5
  reestablish_forward:
    description:
      - With O(direction=reverse), build the forward path again (slot on the source, subscription
        C(odoo_migration) on the target with C(copy_data=false)) while both sides are quiet, so that a
        later forward cutover needs no new copy.
    type: bool
    default: false
  export_snapshots:
    description:
      - Once both sides are quiet (the old side fenced and drained into the new one, sequences copied),
        export a snapshot on each, held open by a detached process (step C(snapshots), in the window,
        under a second), and return them in RV(snapshots). The compare of that instant can then run after
        users are back on the new side (M(sysgenpro.odoo_migration.pg_compare) with
        O(sysgenpro.odoo_migration.pg_compare#module:snapshots)).
      - An abort before the point of no return ends the holders; otherwise pg_compare ends them, or they
        end on their own after six hours.
    type: bool
    default: false
  stage:
    description:
      - C(cutover) runs the cutover (the window).
      - C(prepare), with O(direction=forward), readies the target before the maintenance page while
        users still work on the source, and fences nothing. It checks the gates, creates the helper
        tables, pre-syncs large objects, and sets every target sequence that differs to the source's value.
        Odoo's registry signalling sequences are among them, so an Odoo that loads its registry now
        keeps it after the switch.
      - It also takes the application roles' write privileges on the target database (INSERT,
        UPDATE, DELETE and TRUNCATE on tables, USAGE and UPDATE on sequences). It records them in
        C(odoo_migration.write_holds) and returns them in RV(writes_held). An application started
        now can read, and load its registry, but it cannot write.
      - The cutover gives them back in its C(unfence) step (RV(writes_released)), and so does
        M(sysgenpro.odoo_migration.pg_migration_finalize).
      - A role that could still write (a superuser, or through PUBLIC or another role) fails the hold,
        and nothing is changed.
    type: str
    choices: [cutover, prepare]
    default: cutover
  write_hold_exceptions:
    description:
      - With O(stage=prepare), write privileges the hold leaves to the application roles, as a mapping of
        table (C(name) or C(schema.name)) to privileges (C(INSERT), C(UPDATE), C(DELETE), C(TRUNCATE)).
      - For statements an application issues at start whatever the data. Odoo 19's registry load always
        runs C(DELETE FROM ir_config_parameter WHERE key='base.partially_updated_database'); it deletes
        nothing unless a module update on the old side was left half done.
    type: dict
    default: {}
  return_login:
    description:
      - The login the return path replicates as, on the server that publishes it (the target, for
        O(direction=forward)). Created (or brought back to these attributes) in the C(prepare) step
        with C(LOGIN REPLICATION), C(CONNECT) on this database and nothing else, marked by its comment;
        its password is sent as a SCRAM-SHA-256 verifier, so the clear text reaches neither that server
        nor its log.
      - The return path's connection string then carries this login instead of the user and password of
        O(target_conninfo_from_source) (or O(source_conninfo_from_target)), so the publisher's superuser
        password never reaches the subscriber's catalog.
      - A role of that name that is not such a login fails the run before anything is fenced.
      - M(sysgenpro.odoo_migration.pg_migration_finalize) drops it (its option C(replication_logins)).
    type: dict
    suboptions:
      name:
        description: Role name (lower-case letters, digits and C(_)).
        type: str
        required: true
      password:
        description: Its password. Never returned or logged.
        type: str
        required: true
  rehearse:
    description:
      - Change nothing (as in check mode). Read the gates, then time what each step inside the window
        reads first (the application roles and their sessions, a round trip and the replication lag,
        the subscription's state, the large objects, every sequence on both sides, and with
        O(export_snapshots) a snapshot exported and released on each side) and return the sum as
        RV(rehearsal.predicted_write_unavailable_seconds).
      - Steps that only write (the return path, the drop of the forward path, the unfence) cannot be
        timed without acting and are listed in RV(rehearsal.untimed); the prediction leaves them out.
    type: bool
    default: false
extends_documentation_fragment:
  - sysgenpro.odoo_migration.postgresql
  - sysgenpro.odoo_migration.postgresql.target
  - ansible.builtin.action_common_attributes
  - sysgenpro.odoo_migration.tenancy
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the gates (without the probe marker), returns the plan and RV(would), and changes
        nothing. It reports C(changed=true) when a real run would cut over, and C(changed=false) only when
        there is nothing left to do (RV(state=done)).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Two cutovers of one database cannot run at once. Each run holds a session advisory lock on both
    servers until it ends, and a second run fails naming the session that holds it.
  - Writes attempted by application roles during the fence are rejected with an error (read-only
    transaction, terminated session, or login refused), never silently dropped.
  - Every table published back to the source needs a primary key or a replica identity on the target;
    the gate refuses otherwise.
seealso:
  - module: sysgenpro.odoo_migration.pg_compare
  - module: sysgenpro.odoo_migration.pg_migration_finalize
"""

EXAMPLES = r"""
- name: Cut acme over to the new server
  sysgenpro.odoo_migration.pg_cutover:
    source:
      host: legacy-vm-1.example.net
      user: odoo_migration
      password: "{{ vault_source_pw }}"
      database: acme
    target:
      host: pg18.example.net
      password: "{{ vault_target_pw }}"
    target_conninfo_from_source: >-
      host=pg18.example.net user=postgres dbname=acme
      password={{ vault_target_pw }}
    application_roles: [odoo]
    grace_seconds: 2
    budgets: {total: 20}
  delegate_to: localhost
  register: cutover

- name: Roll back to the legacy server over the reverse path
  sysgenpro.odoo_migration.pg_cutover:
    source:
      host: legacy-vm-1.example.net
      user: odoo_migration
      password: "{{ vault_source_pw }}"
      database: acme
    target:
      host: pg18.example.net
      password: "{{ vault_target_pw }}"
    application_roles: [odoo]
    direction: reverse
  delegate_to: localhost
"""

RETURN = r"""
writes_held:
  description:
    - With O(stage=prepare), per application role (target name), how many tables and sequences it lost
      its write privileges on in this run (in check mode, would lose).
  returned: when O(stage=prepare) and the cutover is still to be done
  type: dict
  sample: {odoo_legacy_vm_1: {tables: 642, sequences: 611}}
sequences_presynced:
  description:
    - With O(stage=prepare), how many target sequences were (in check mode, would be) set to the
      source's value.
  returned: when O(stage=prepare) and the cutover is still to be done
  type: int
  sample: 14
writes_released:
  description: The roles whose write privileges, held since O(stage=prepare), were given back in the window.
  returned: when the run switched
  type: list
  elements: str
  sample: [odoo_legacy_vm_1]
rehearsal:
  description: With O(rehearse), what was timed and the predicted write unavailability.
  returned: when O(rehearse) and the cutover is still to be done
  type: dict
  contains:
    steps:
      description: Each timed step (C(step)), what was done for it (C(what)) and its duration (C(seconds)).
      type: list
      elements: dict
      sample: [{step: sequences, what: read every sequence on both sides, seconds: 0.041}]
    untimed:
      description: Steps inside the window that cannot be timed without changing anything.
      type: list
      elements: str
      sample: [return_path, drop_path, unfence]
    predicted_write_unavailable_seconds:
      description: The sum of the timed steps.
      type: float
      sample: 0.42
snapshots:
  description:
    - With O(export_snapshots), the snapshot of each side at the fence instant (C(snapshot)) and the
      backend of the process holding it (C(backend_pid)); give it to M(sysgenpro.odoo_migration.pg_compare),
      which compares that instant and then ends the holders.
  returned: when O(export_snapshots) and the run switched
  type: dict
  sample:
    source: {snapshot: 00000004-0000002A-1, backend_pid: 4242}
    target: {snapshot: 00000005-0000001B-1, backend_pid: 4343}
application_roles:
  description: O(application_roles), the roles fenced and unfenced on the source.
  returned: always
  type: list
  elements: str
  sample: [odoo]
target_application_roles:
  description: The same roles as the target names them (O(role_map)); fenced and unfenced there.
  returned: always
  type: list
  elements: str
  sample: [odoo_legacy_vm_1]
state:
  description:
    - C(ready) before a run, C(switched) after it, C(done) when there was nothing left to do, and
      C(prepared) after a run with O(stage=prepare).
  returned: always
  type: str
  sample: switched
direction:
  description: O(direction).
  returned: always
  type: str
  sample: forward
return_login:
  description: The return path's login, when O(return_login) was given and the prepare step ran.
  returned: when O(return_login) is given, outside check mode
  type: str
  sample: odoo_migration_return_legacy_vm_1
would:
  description:
    - In check mode (not with O(rehearse)), the actions a real run would take, in order.
  returned: in check mode when there is something to cut over
  type: list
  elements: str
  sample:
    - fence odoo on the source (legacy-vm-1:5432/acme) (no login, read-only, sessions ended)
plan:
  description:
    - The steps of this run with their budgets and whether they are in the write-unavailability window.
  returned: always
  type: list
  elements: dict
  sample: [{step: fence, budget_seconds: 10.0, in_window: true}]
gates:
  description: Lag in bytes, probe round trip, subscription state, application roles, and the problems found.
  returned: always
  type: dict
  sample: {lag_bytes: 0, marker_round_trip_seconds: 0.012, ok: true, problems: []}
steps:
  description: Every step run, with C(seconds), C(budget_seconds) and C(ok).
  returned: always
  type: list
  elements: dict
  sample: [{step: drain, seconds: 0.021, budget_seconds: 10.0, ok: true}]
write_unavailable_seconds:
  description:
    - Seconds from the start of the fence to the end of the module (the application switch comes on top).
  returned: always
  type: float
  sample: 2.41
fence:
  description: Fenced side, roles, grace waited, sessions terminated.
  returned: when the fence ran
  type: dict
  sample: {side: source, roles: [odoo], grace_waited_seconds: 0.02, terminated_sessions: 3}
marker:
  description: The fence marker (token, id, WAL position after its commit, side).
  returned: when the marker was committed
  type: dict
  sample: {token: 3f1c..., id: 12, lsn: 0/3A2B1C8, side: source}
sequences:
  description: Sequences copied, standalone ones by name, owned ones guarded, guard violations.
  returned: when the sequences step ran
  type: dict
  sample: {copied: 812, owned: 790, standalone: [public.ir_sequence_001], guard_violations: []}
large_objects:
  description:
    - Large objects carried inside the fence from the old side to the new one (C(objects) on the old side,
      C(copied), C(removed), C(bytes_copied)).
  returned: when the large_objects step ran
  type: dict
  sample: {objects: 3, copied: 1, removed: 0, bytes_copied: 52}
materialized_views:
  description:
    - Materialized views refreshed on the new side after the switch, those that failed with the error, and
      the time taken.
  returned: after a switch
  type: dict
  sample: {refreshed: [lab_reporting.lab_event_summary], failed: [], seconds: 0.04}
login_roles:
  description:
    - Each other login role the database uses (not an application role, not a superuser) and what was done
      with it on the new side (C(action)); passwords are copied as hashes and never returned.
  returned: after a switch
  type: list
  elements: dict
  sample: [{role: lab_bi_legacy_vm_1, action: logs in on the target with its password from the source}]
point_of_no_return_passed:
  description: Whether the path in use was being dropped (after that nothing is undone).
  returned: always
  type: bool
  sample: true
aborted:
  description: Whether the run stopped before the point of no return and undid the fence.
  returned: always
  type: bool
  sample: false
abort_reason:
  description: Why it stopped (no secret).
  returned: always
  type: str
  sample: null
undone:
  description: What the abort undid.
  returned: always
  type: list
  elements: str
  sample: []
return_path_conninfo:
  description: The return path's connection string with its password replaced by C(********).
  returned: always
  type: str
  sample: host=pg18 user=postgres password=******** dbname=acme
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import connection as _pg
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import cutover as _cutover


def argument_spec():
    return dict(
        source=dict(type="dict", required=True, options=_pg.endpoint_options(True)),
        target=dict(type="dict", required=True, options=_pg.endpoint_options(False)),
        application_roles=dict(type="list", elements="str", required=True),
        direction=dict(type="str", default="forward", choices=list(_cutover.DIRECTIONS)),
        source_conninfo_from_target=dict(type="str", no_log=True),
        target_conninfo_from_source=dict(type="str", no_log=True),
        grace_seconds=dict(type="float", default=2),
        budgets=dict(type="dict", default={}),
        max_lag_bytes=dict(type="int", default=_cutover.DEFAULT_MAX_LAG_BYTES),
        max_lag_seconds=dict(type="float", default=_cutover.DEFAULT_MAX_LAG_SECONDS),
        reestablish_forward=dict(type="bool", default=False),
        role_map=dict(type="dict", default={}),
        export_snapshots=dict(type="bool", default=False),
        rehearse=dict(type="bool", default=False),
        stage=dict(type="str", default="cutover", choices=list(_cutover.STAGES)),
        write_hold_exceptions=dict(type="dict", default={}),
        return_login=dict(
            type="dict",
            options=dict(
                name=dict(type="str", required=True), password=dict(type="str", required=True, no_log=True)
            ),
        ),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _pg.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg 3)"), exception=_pg.PSYCOPG_IMPORT_ERROR)
    params = module.params
    source, target = _cutover.endpoints_from_params(params)
    try:
        report = _cutover.run_cutover(
            source,
            target,
            application_roles=params["application_roles"],
            direction=params["direction"],
            source_conninfo_from_target=params["source_conninfo_from_target"],
            target_conninfo_from_source=params["target_conninfo_from_source"],
            grace_seconds=params["grace_seconds"],
            budgets=params["budgets"],
            max_lag_bytes=params["max_lag_bytes"],
            max_lag_seconds=params["max_lag_seconds"],
            reestablish_forward=params["reestablish_forward"],
            check_mode=module.check_mode,
            role_map=params["role_map"],
            export_snapshots=params["export_snapshots"],
            rehearse=params["rehearse"],
            stage=params["stage"],
            write_hold_exceptions=params["write_hold_exceptions"],
            return_login=params["return_login"],
        )
    except _cutover.CutoverError as error:
        report = dict(error.report)
        report.pop("changed", None)
        module.fail_json(msg=str(error), changed=bool(error.report.get("changed")), **report)
    except _pg.PgError as error:
        module.fail_json(msg=str(error))
    changed = report.pop("changed", False)
    module.exit_json(changed=changed, **report)


if __name__ == "__main__":
    main()
