# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: audit
type: aggregate
short_description: Append who did what, when and with which result to each host's migration journal
version_added: 0.1.0
description:
  - For every task that ran on a host that has a migration state directory (created by the discover
    phase), appends one record to C(<state_dir>/<host>/journal.jsonl) through the collection's
    hash-chained journal; at the end of the playbook, one record with the host's recap.
  - A record holds the operator (the local user, and the AWX user and job when AWX runs the playbook),
    C(check_mode=true) for a C(--check) run,
    the playbook, play, task and module, the result (ok, changed, failed, unreachable), the duration
    and, for failures, the message. Results of C(no_log) tasks are not recorded; secret-looking keys
    are masked.
  - What a module returns under C(journal), a dict of what an auditor must find (such as the schema
    options a copy left out), is kept in the record's C(details), one entry per loop item.
  - The state directory is the one the roles use, O(state_dir) unless the host's variable
    C(odoo_migration_state_dir) says otherwise (inventory, group_vars, extra vars), templated.
  - Hosts without their own directory in the state directory (not discovered yet) are left alone, so lab
    and ad-hoc runs write nothing. A state directory that was set (by the variable or in this plugin's
    configuration) and does not exist is an error, shown once per directory, never silence.
  - Check a journal end to end with M(sysgenpro.odoo_migration.audit_journal_info).
author:
  - sysgenpro platform engineering (@sysgenpro)
requirements:
  - enable in ansible.cfg (C(callbacks_enabled = sysgenpro.odoo_migration.audit))
options:
  state_dir:
    description: Directory holding the per-host migration state.
    type: path
    default: migration-state
    env:
      - name: ODOO_MIGRATION_STATE_DIR
    ini:
      - section: callback_audit
        key: state_dir
"""

import datetime
import getpass
import os
import time

from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible.template import Templar
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.audit.journal import (
    JournalError,
    append_event,
)

MESSAGE_LIMIT = 2000
DEFAULT_STATE_DIR = "migration-state"
COLLECTION = "sysgenpro.odoo_migration."
# The variable every role takes its state directory from.
STATE_DIR_VARIABLE = "odoo_migration_state_dir"


def journal_details(result):
    """The `journal` dicts a task's result carries: its own, or each loop item's."""
    found = []
    for item in [result] + list(result.get("results") or []):
        if (
            isinstance(item, dict)
            and isinstance(item.get("journal"), dict)
            and not item.get("_ansible_no_log")
        ):
            found.append(item["journal"])
    return found


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sysgenpro.odoo_migration.audit"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._started = {}
        self._playbook = None
        self._play = None
        self._context = {"operator": getpass.getuser()}
        self._configured_state_dir = None
        self._variable_manager = None
        self._loader = None
        self._play_object = None
        self._state_dirs = {}
        self._said = set()
        self._missing_state_dirs = set()

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._configured_state_dir = self.get_option("state_dir")

    def _host_variable(self, host):
        """The host's odoo_migration_state_dir in the current play, templated; None when unset."""
        if self._variable_manager is None or host is None or isinstance(host, str):
            return None
        try:
            variables = self._variable_manager.get_vars(play=self._play_object, host=host)
            value = variables.get(STATE_DIR_VARIABLE)
            if value is None:
                return None
            return str(Templar(loader=self._loader, variables=variables).template(value))
        except Exception as error:  # a broken variable must not stop the play; it is said, once
            self._say_once("audit journal: cannot read %s for %s: %s" % (STATE_DIR_VARIABLE, host, error))
            return None

    def _state_dir(self, host):
        """(state directory, whether it was set rather than the default) for a host, read once per
        playbook (the recap at its end needs the hosts of every play)."""
        name = host if isinstance(host, str) else host.get_name()
        if name not in self._state_dirs:
            from_variable = self._host_variable(host)
            if from_variable:
                self._state_dirs[name] = (from_variable, True)
            else:
                configured = self._configured_state_dir or DEFAULT_STATE_DIR
                self._state_dirs[name] = (configured, configured != DEFAULT_STATE_DIR)
        return self._state_dirs[name]

    def _say_once(self, message):
        if message not in self._said:
            self._said.add(message)
            self._display.error(message)

    def _host_journal(self, host, ours=False):
        state_dir, was_set = self._state_dir(host)
        if not os.path.isdir(state_dir):
            # The first discovery creates it: said at the end of the playbook if it still does not exist
            # after the collection's own roles or modules ran for a host that uses it.
            if was_set and ours:
                self._missing_state_dirs.add(state_dir)
            return None
        directory = os.path.join(state_dir, host if isinstance(host, str) else host.get_name())
        return os.path.join(directory, "journal.jsonl") if os.path.isdir(directory) else None

    def _append(self, host, event, ours=False):
        path = self._host_journal(host, ours)
        if path is None:
            return
        record = dict(self._context)
        record.update(event)
        try:
            append_event(path, record)
        except (JournalError, OSError) as error:
            self._say_once("audit journal %s not written: %s" % (path, error))

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(playbook._file_name)
        # A --check run is recorded too, and said to be one.
        if context.CLIARGS.get("check"):
            self._context["check_mode"] = True

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        self._play_object = play
        self._variable_manager = play.get_variable_manager()
        self._loader = getattr(play, "_loader", None)
        extra = self._variable_manager.extra_vars
        for key in ("awx_user_name", "awx_job_id", "awx_job_template_name"):
            if extra.get(key) is not None:
                self._context[key.replace("awx_", "awx.")] = str(extra[key])

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _task_event(self, result, outcome):
        host = result._host
        task = result._task
        started = self._started.pop((host.get_name(), task._uuid), None)
        event = {
            "action": "task",
            "playbook": self._playbook,
            "play": self._play,
            "task": task.get_name(),
            "module": task.action,
            "result": outcome,
            "duration_s": round(time.monotonic() - started, 3) if started is not None else None,
        }
        hidden = task.no_log or result._result.get("_ansible_no_log")
        details = [] if hidden else journal_details(result._result)
        if details:
            event["details"] = details
        if outcome.startswith("failed") or outcome == "unreachable":
            if hidden:
                event["message"] = "(output hidden by no_log)"
            else:
                event["message"] = str(result._result.get("msg", ""))[:MESSAGE_LIMIT]
        role = getattr(task, "_role", None)
        ours = str(task.action).startswith(COLLECTION) or (
            role is not None and str(role.get_name()).startswith(COLLECTION)
        )
        self._append(host, event, ours)

    def v2_runner_on_ok(self, result):
        self._task_event(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task_event(result, "failed (ignored)" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result):
        self._task_event(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._started.pop((result._host.get_name(), result._task._uuid), None)

    def v2_playbook_on_stats(self, stats):
        for state_dir in sorted(self._missing_state_dirs):
            if os.path.isdir(state_dir):
                continue
            message = (
                "audit journal: the state directory %s does not exist, so no journal was written for the "
                "hosts that use it; create it, or correct %s (or ODOO_MIGRATION_STATE_DIR)"
                % (state_dir, STATE_DIR_VARIABLE)
            )
            if self._context.get("check_mode"):
                # A check run before the first discovery: nothing was meant to exist yet.
                self._display.warning(message)
            else:
                self._say_once(message)
        finished = datetime.datetime.now(datetime.timezone.utc).isoformat()
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            outcome = "failed" if summary["failures"] or summary["unreachable"] else "ok"
            self._append(
                host,
                {
                    "action": "playbook",
                    "playbook": self._playbook,
                    "result": outcome,
                    "recap": summary,
                    "finished": finished,
                },
            )
