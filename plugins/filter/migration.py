# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the cutover and rollback roles use to turn module results into migration-state files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

CUTOVER_KEYS = (
    "state",
    "direction",
    "write_unavailable_seconds",
    "point_of_no_return_passed",
    "aborted",
    "abort_reason",
    "undone",
    "fence",
    "return_path_conninfo",
    "large_objects",
    "materialized_views",
    "login_roles",
    "writes_released",
)
STEP_KEYS = ("step", "seconds", "budget_seconds", "ok")
COMPARE_KEYS = (
    "equal",
    "tables_compared",
    "rows_compared",
    "chunks_compared",
    "sequences_compared",
    "large_objects_compared",
    "tables_without_primary_key",
)
MAX_DIFFERENCES = 20
MESSAGE_LIMIT = 900


def cutover_summary(pair):
    """(pg_cutover result, pg_compare result or {}), or a pg_cutover result alone, -> what
    cutover.yml / rollback.yml keep.

    Only named keys are kept: never the module's invocation (its arguments), so no secret,
    even a masked one, reaches the state file.
    """
    if isinstance(pair, dict):
        pair = (pair, {})
    switch, compared = (list(pair) + [{}, {}])[:2]
    switch = switch or {}
    compared = compared or {}
    summary = dict((key, switch.get(key)) for key in CUTOVER_KEYS if key in switch)
    summary["changed"] = bool(switch.get("changed"))
    summary["steps"] = [
        dict((key, step.get(key)) for key in STEP_KEYS if key in step) for step in switch.get("steps") or []
    ]
    sequences = switch.get("sequences") or {}
    if sequences:
        summary["sequences"] = {
            "copied": sequences.get("copied"),
            "owned": sequences.get("owned"),
            "standalone": len(sequences.get("standalone") or []),
            "guard_violations": sequences.get("guard_violations") or [],
        }
    if compared and not compared.get("skipped") and "equal" in compared:
        result = dict((key, compared.get(key)) for key in COMPARE_KEYS if key in compared)
        differences = compared.get("differences") or []
        result["differences"] = differences[:MAX_DIFFERENCES]
        result["differences_total"] = len(differences)
        summary["compare"] = result
    return summary


def smoke_summary(results, loop_var="item"):
    """The results of an odoo_smoke_test loop over databases -> {database: {passed, failed, error}}.

    Works on a failed loop too (the database whose module failed before any check has only its error),
    and keeps no argument of the module (its password).
    """
    summary = {}
    for result in results or []:
        checks = result.get("checks") or []
        summary[str(result.get(loop_var))] = {
            "passed": [check["name"] for check in checks if check.get("ok")],
            "failed": [check["name"] for check in checks if not check.get("ok")],
            "error": str(result.get("msg") or "")[:MESSAGE_LIMIT] if result.get("failed") else "",
        }
    return summary


REPLICATION_DIRECTIONS = ("return", "forward")


def replication_login(host, direction="return"):
    """The name of the login a host's path replicates as on its publisher (a PostgreSQL role name):
    return, the reverse subscription's login on the target; forward, the target's subscription's
    login on the VM."""
    if direction not in REPLICATION_DIRECTIONS:
        raise AnsibleFilterError(
            "replication_login: direction must be one of %s, not %r"
            % (", ".join(REPLICATION_DIRECTIONS), direction)
        )
    return ("odoo_migration_%s_%s" % (direction, re.sub(r"[^a-z0-9_]", "_", str(host).lower())))[:63]


class FilterModule:
    def filters(self):
        return {
            "cutover_summary": cutover_summary,
            "smoke_summary": smoke_summary,
            "replication_login": replication_login,
        }
