#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_restore_drill
short_description: Restore a pgBackRest backup into a scratch instance and prove that it is whole
version_added: 0.2.0
description:
  - Runs as the PostgreSQL owner on a host that has pgBackRest's configuration for the stanza and the server
    binaries of the backup's major version - the VM itself, or a drill container on the container host.
  - Restores the latest backup, or a point in time or a named restore point, into a scratch directory with
    pgBackRest (C(--archive-mode=off), so the drill pushes no new timeline into the repository), starts it
    on a socket of its own, and waits until recovery has ended and it is promoted.
  - Then reads every table of every database (C(pg_dump) to nowhere), runs C(pg_amcheck) on heap and B-tree
    indexes (every tuple found by its indexes, unique indexes unique), counts the rows of every table,
    compares them with O(expected_row_counts), and checks that every attachment a restored database references
    (C(ir_attachment.store_fname)) is in the filestore backup (O(filestore_objects)).
  - Returns the restore and recovery times and the recovery point actually reached (the last transaction the
    scratch instance replayed), which can be earlier than the target. pgBackRest's restore exits 0 even when a
    target cannot be reached, so the verdict comes from the started instance.
  - Before restoring, checks that the restored directory fits on the scratch directory's filesystem with
    O(scratch_reserve_mb) to spare; a drill that does not fit restores nothing.
  - The scratch instance is stopped and its directory removed at the end, whatever happened.
author:
  - sysgenpro platform engineering (@sysgenpro)
options:
  target:
    description:
      - C(latest) replays every archived WAL segment after the newest backup; C(immediate) stops as soon
        as the backup is consistent; C(time) stops at O(target_time); C(name) at the restore point
        O(target_name).
      - Every target ends recovery and promotes the scratch instance (pgBackRest's default would pause it);
        a recovery that pauses anyway fails the drill at once.
    type: str
    choices: [latest, immediate, time, name]
    default: latest
  target_time:
    description: The point in time, ISO 8601 with its offset (for example C(2026-12-07T10:15:00+00:00)).
    type: str
  target_name:
    description: The restore point's name (C(pg_create_restore_point)).
    type: str
  expected_row_counts:
    description:
      - Rows each table had at the target, as a mapping of database to a mapping of C(schema.table) to
        rows; every table named is compared with the restored one.
    type: dict
    default: {}
  filestore_objects:
    description:
      - Per database, the path of a file on this host listing its filestore backup's objects (one
        C(store_fname) per line, as C(ab/abcdef...); M(sysgenpro.odoo_migration.odoo_filestore_backup)'s
        O(sysgenpro.odoo_migration.odoo_filestore_backup#module:objects_list)). Every attachment of that
        restored database must be in it. A database left out is not checked, and RV(attachments) says so.
    type: dict
    default: {}
  scratch_dir:
    description: Directory of the scratch instance (created, then removed).
    type: path
    default: /var/lib/postgresql/odoo-migration-drill
  scratch_reserve_mb:
    description: Space that must stay free on the scratch filesystem after the restore, in MiB.
    type: int
    default: 1024
  port:
    description: Port of the scratch instance (its socket only; it listens on no network address).
    type: int
    default: 5499
  timeout:
    description: Seconds the start and the recovery may take.
    type: int
    default: 1800
  amcheck:
    description: Run C(pg_amcheck).
    type: bool
    default: true
  fail_on_problem:
    description: Fail when the drill finds a problem (the result still carries everything found).
    type: bool
    default: true
extends_documentation_fragment:
  - sysgenpro.odoo_migration.pgbackrest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Chooses the backup and checks the space, and restores nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: sysgenpro.odoo_migration.pg_backup_check
  - module: sysgenpro.odoo_migration.pg_restore_point
"""

EXAMPLES = r"""
- name: Drill the latest backup on the VM
  sysgenpro.odoo_migration.pg_restore_drill:
    stanza: legacy-vm-1
  become: true
  become_user: postgres

- name: Drill a point in time and compare with the counts taken then
  sysgenpro.odoo_migration.pg_restore_drill:
    stanza: legacy-vm-1
    target: name
    target_name: "{{ restore_point.name }}"
    expected_row_counts: "{{ restore_point.row_counts }}"
  become: true
  become_user: postgres
"""

RETURN = r"""
passed:
  description: Whether the drill found no problem.
  returned: always
  type: bool
problems:
  description: Every problem found.
  returned: always
  type: list
  elements: str
backup_set:
  description: The backup restored.
  returned: always
  type: str
target:
  description: The recovery target asked for (C(latest), C(immediate), the time or the restore point's name).
  returned: always
  type: str
recovery_point:
  description:
    - What recovery reached - C(time) (UTC), C(lsn), C(timeline) and C(source) - C(last_replayed_transaction)
      when recovery replayed a transaction, C(backup_end) (the backup's stop time) when none was committed
      after the backup.
  returned: always
  type: dict
restore_seconds:
  description: Seconds pgBackRest took to restore the files.
  returned: always
  type: float
recovery_seconds:
  description: Seconds from the start of the scratch instance until recovery ended and it was promoted.
  returned: always
  type: float
checks_seconds:
  description: Seconds the reads, amcheck and counts took.
  returned: always
  type: float
space:
  description: Bytes the restore needs (C(needed)) and bytes free (C(free)) on the scratch filesystem.
  returned: always
  type: dict
databases:
  description:
    - Per database, C(tables) and C(rows) restored, C(read_error) (null when every row read) and
      C(count_differences) (table to C([expected, restored])).
  returned: always
  type: dict
row_counts:
  description: Rows of every restored table, as a mapping of database to a mapping of table to rows.
  returned: always
  type: dict
amcheck:
  description: C(ok) and the C(problems) pg_amcheck printed; null when not run.
  returned: always
  type: dict
attachments:
  description:
    - C(checked) (the databases whose attachments were checked), and per database checked the
      C(referenced) count and the C(missing) store names.
  returned: always
  type: dict
journal:
  description:
    - What the audit callback keeps in the host's journal (the record's C(details)) - the drill's verdict,
      problems, backup set, target, recovery point and timings.
  returned: always
  type: dict
"""

import datetime
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import drill as _drill
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import pgbackrest as _pgbackrest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.files import filestore as _filestore


def parse_target_time(module, text):
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        module.fail_json(
            msg="target_time %r is not an ISO 8601 time: write it as 2026-12-07T10:15:00+00:00" % text
        )
    if moment.tzinfo is None:
        module.fail_json(
            msg="target_time %r has no offset: add one (+00:00 for UTC), or the drill's time zone "
            "would decide what it means" % text
        )
    moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00"), moment.timestamp()


def main():
    module = AnsibleModule(
        argument_spec=_pgbackrest.argument_spec(
            target=dict(type="str", choices=list(_drill.TARGET_TYPES), default="latest"),
            target_time=dict(type="str"),
            target_name=dict(type="str"),
            expected_row_counts=dict(type="dict", default={}),
            filestore_objects=dict(type="dict", default={}),
            scratch_dir=dict(type="path", default="/var/lib/postgresql/odoo-migration-drill"),
            scratch_reserve_mb=dict(type="int", default=1024),
            port=dict(type="int", default=5499),
            timeout=dict(type="int", default=1800),
            amcheck=dict(type="bool", default=True),
            fail_on_problem=dict(type="bool", default=True),
        ),
        required_if=[("target", "time", ["target_time"]), ("target", "name", ["target_name"])],
        supports_check_mode=True,
    )
    params = module.params
    result = dict(
        changed=False,
        passed=False,
        problems=[],
        backup_set=None,
        target=params["target"],
        recovery_point={},
        restore_seconds=0.0,
        recovery_seconds=0.0,
        checks_seconds=0.0,
        space={},
        databases={},
        row_counts={},
        amcheck=None,
        attachments={"checked": []},
        journal={},
    )
    target, target_epoch = None, None
    if params["target"] == "time":
        target, target_epoch = parse_target_time(module, params["target_time"])
        result["target"] = params["target_time"]
    elif params["target"] == "name":
        target = result["target"] = params["target_name"]

    stored = {}
    for database, path in sorted(params["filestore_objects"].items()):
        try:
            with open(path, encoding="utf-8") as handle:
                stored[database] = {line.strip() for line in handle if line.strip()}
        except OSError as error:
            module.fail_json(
                msg="cannot read the filestore backup's object list of %s, %s: %s; run the filestore "
                "backup (baseline_backup) first" % (database, path, error),
                **result,
            )

    def run(argv):
        return module.run_command(argv)

    drill = _drill.Drill(
        run, params["stanza"], params["pgbackrest"], params["config"], params["port"], params["timeout"]
    )
    layout = _drill.Layout(params["scratch_dir"])
    try:
        info = drill.info()
        backup = _drill.choose_backup(_pgbackrest.summarize_backups(info), params["target"], target_epoch)
        result["backup_set"] = backup["label"]
        needed, free = _drill.check_space(params["scratch_dir"], backup, params["scratch_reserve_mb"])
        result["space"] = {"needed": needed, "free": free}
        if module.check_mode:
            result["passed"] = True
            module.exit_json(**result)
        drill.prepare(layout)
        started = time.time()
        result["backup_set"] = drill.restore(layout, params["target"], target, backup["label"])
        result["restore_seconds"] = round(time.time() - started, 2)
        drill.configure(layout)
        result["recovery_seconds"] = round(drill.start(layout), 2)
        result["recovery_point"] = drill.recovery_point(layout, backup)

        started = time.time()
        problems = result["problems"]
        attachments = {"checked": sorted(stored)}
        for database in drill.databases(layout):
            counts = drill.counts(layout, database)
            expected = params["expected_row_counts"].get(database, {})
            entry = {
                "tables": len(counts),
                "rows": sum(counts.values()),
                "read_error": drill.read_everything(layout, database),
                "count_differences": _drill.compare_counts(expected, counts),
            }
            result["databases"][database] = entry
            result["row_counts"][database] = counts
            if entry["read_error"]:
                problems.append("%s: not every row reads back: %s" % (database, entry["read_error"]))
            for table, (wanted, found) in sorted(entry["count_differences"].items()):
                problems.append("%s: %s has %s rows restored, %s expected" % (database, table, found, wanted))
            if database in stored:
                referenced = drill.attachments(layout, database)
                missing = _filestore.missing_attachments(referenced, stored[database])
                attachments[database] = {"referenced": len(referenced), "missing": missing[:50]}
                if missing:
                    problems.append(
                        "%s: %d attachments are not in the filestore backup (first: %s)"
                        % (database, len(missing), missing[0])
                    )
        for database in sorted(set(params["expected_row_counts"]) - set(result["databases"])):
            problems.append("%s: the database is not in the restored instance" % database)
        result["attachments"] = attachments
        if params["amcheck"]:
            result["amcheck"] = drill.amcheck(layout)
            if not result["amcheck"]["ok"]:
                problems.append(
                    "pg_amcheck found corruption: %s" % "; ".join(result["amcheck"]["problems"][:3])
                )
        result["checks_seconds"] = round(time.time() - started, 2)
    except _drill.DrillError as error:
        result["problems"].append(str(error))
    finally:
        if drill.bin_dir and not module.check_mode:
            drill.stop(layout)
            drill.clear(layout)
    result["passed"] = not result["problems"]
    result["journal"] = {
        "restore_drill": {
            key: result[key]
            for key in (
                "passed",
                "problems",
                "backup_set",
                "target",
                "recovery_point",
                "restore_seconds",
                "recovery_seconds",
                "checks_seconds",
            )
        }
    }
    if result["problems"] and params["fail_on_problem"]:
        module.fail_json(
            msg="restore drill of stanza %s failed: %s" % (params["stanza"], "; ".join(result["problems"])),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
