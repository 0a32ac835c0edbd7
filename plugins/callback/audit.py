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
    the playbook, play, task and module, the result (ok, changed, failed, unreachable), the duration
    and, for failures, the message. Results of C(no_log) tasks are not recorded; secret-looking keys
    are masked.
  - What a module returns under C(journal), a dict of what an auditor must find (such as the schema
    options a copy left out), is kept in the record's C(details), one entry per loop item.
  - Hosts without a state directory are left alone, so lab and ad-hoc runs write nothing.
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

from ansible.plugins.callback import CallbackBase
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils._journal import (
    JournalError,
    append_event,
)

MESSAGE_LIMIT = 2000


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
        self._state_dir = None
        self._state_dir_override = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._state_dir = self.get_option("state_dir")

    def _host_journal(self, host):
        state_dir = self._state_dir_override or self._state_dir or "migration-state"
        directory = os.path.join(state_dir, host)
        return os.path.join(directory, "journal.jsonl") if os.path.isdir(directory) else None

    def _append(self, host, event):
        path = self._host_journal(host)
        if path is None:
            return
        record = dict(self._context)
        record.update(event)
        try:
            append_event(path, record)
        except (JournalError, OSError) as error:
            self._display.warning("audit journal %s not written: %s" % (path, error))

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        extra = play.get_variable_manager().extra_vars
        # A state directory given to the playbook (-e odoo_migration_state_dir=...) is where the phases write.
        if extra.get("odoo_migration_state_dir"):
            self._state_dir_override = str(extra["odoo_migration_state_dir"])
        for key in ("awx_user_name", "awx_job_id", "awx_job_template_name"):
            if extra.get(key) is not None:
                self._context[key.replace("awx_", "awx.")] = str(extra[key])

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _task_event(self, result, outcome):
        host = result._host.get_name()
        task = result._task
        started = self._started.pop((host, task._uuid), None)
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
        if outcome in ("failed", "unreachable"):
            if hidden:
                event["message"] = "(output hidden by no_log)"
            else:
                event["message"] = str(result._result.get("msg", ""))[:MESSAGE_LIMIT]
        self._append(host, event)

    def v2_runner_on_ok(self, result):
        self._task_event(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task_event(result, "failed (ignored)" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result):
        self._task_event(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._started.pop((result._host.get_name(), result._task._uuid), None)

    def v2_playbook_on_stats(self, stats):
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
