"""app_cutover: the outcome is written even when the rollback fails, and public proofs take the CA bundle.

The task files are read as data (what runs, in which order), and the roles run on this machine only
(local connection, no lab, no Docker): rollback.yml with one of its steps failing, wave.yml from its
cutover play on, wave_report on state files as app_cutover writes them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
ROLES = REPO / "roles"
SMOKE = "sysgenpro.odoo_migration.odoo_smoke_test"


def load(path):
    return yaml.safe_load(path.read_text())


def tasks_of(tasks):
    """Every task, blocks opened (block, rescue, always), in file order."""
    for task in tasks or []:
        yield task
        for section in ("block", "rescue", "always"):
            yield from tasks_of(task.get(section))


def test_the_rollback_writes_its_outcome_before_it_fails_the_host():
    (undo,) = load(ROLES / "app_cutover/tasks/rollback.yml")
    rescue = undo["rescue"]
    assert [next(key for key in task if key.startswith("ansible.builtin.")) for task in rescue] == [
        "ansible.builtin.set_fact",
        "ansible.builtin.include_tasks",
        "ansible.builtin.fail",
    ]
    outcome = rescue[0]["ansible.builtin.set_fact"]
    assert "rolled_back_unproven" in outcome["__app_cutover_outcome"]
    assert "rollback_failed" in outcome["__app_cutover_outcome"]
    assert "smoke_summary" in outcome["__app_cutover_rollback_smoke_report"]
    assert rescue[1]["ansible.builtin.include_tasks"] == "record.yml"
    # The proof is the block's last step but its outcome: a failed proof lands in the rescue.
    names = [task["name"] for task in undo["block"]]
    assert names.index("rollback | Prove the VM serves each database again") == len(names) - 2
    written = load(ROLES / "app_cutover/tasks/record.yml")[0]["ansible.builtin.copy"]["content"]
    assert "'rollback_failure'" in written and "'rollback_smoke'" in written


def test_the_wave_writes_its_report_before_a_failed_host_ends_the_run():
    # wave.yml ends with app_cutover.yml, the cutover step an operator or AWX also runs alone.
    assert load(REPO / "playbooks/wave.yml")[-1]["ansible.builtin.import_playbook"] == "app_cutover.yml"
    plays = load(REPO / "playbooks/app_cutover.yml")
    (cutover,) = [play for play in plays if play["name"].startswith("Move each instance")]
    (move,) = [task for task in cutover["tasks"] if "block" in task]
    assert move["when"] == "not (wave_rehearse | default(false) | bool) and wave_check_stop is not defined"
    assert move["block"][0]["ansible.builtin.include_role"]["name"] == "sysgenpro.odoo_migration.app_cutover"
    assert move["rescue"][0]["ansible.builtin.include_role"]["name"] == "sysgenpro.odoo_migration.wave_report"
    assert "ansible.builtin.fail" in move["rescue"][-1]


def test_every_proof_through_the_public_url_takes_the_ca_bundle_and_the_others_do_not():
    public, direct = 0, 0
    for path in ROLES.glob("*/tasks/*.yml"):
        for task in tasks_of(load(path)):
            if SMOKE not in task:
                continue
            args = task[SMOKE]
            if "app_cutover_public_url" in args["url"]:
                public += 1
                assert args.get("ca_path") == "{{ app_cutover_smoke_ca_path | default(omit, true) }}", path
            else:
                # Sent straight to a container over HTTP from the Docker host, where the bundle is not.
                direct += 1
                assert "ca_path" not in args, path
    # Every proof goes through the public URL now: none is sent straight to a container.
    assert public == 4 and direct == 0


def test_the_ca_bundle_variable_is_documented_for_every_entry_point():
    assert load(ROLES / "app_cutover/defaults/main.yml")["app_cutover_smoke_ca_path"] == ""
    specs = load(ROLES / "app_cutover/meta/argument_specs.yml")["argument_specs"]
    # The entry points that run smoke tests (the rehearsal runs none).
    for name in ("main", "back"):
        assert specs[name]["options"]["app_cutover_smoke_ca_path"]["default"] == ""
    assert "app_cutover_smoke_ca_path" not in specs["rehearse"]["options"]


def run_playbook(state, playbook, *args, hosts=("localhost",), **variables):
    """ansible-playbook on this machine only (local connection, no lab): (exit code, output)."""
    (state / "inventory.yml").write_text(
        yaml.safe_dump({"all": {"children": {"wave9": {"hosts": dict.fromkeys(hosts, {})}}}})
    )
    variables.setdefault("ansible_connection", "local")
    variables.setdefault("ansible_python_interpreter", sys.executable)
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(state / "inventory.yml")]
        + ["-e", json.dumps(variables), *args, str(playbook)],
        cwd=state,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ODOO_MIGRATION_STATE_DIR=str(state)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return run.returncode, run.stdout + run.stderr


def render_wave_report(state, hosts):
    """The role wave_report, run on state files: the report it writes."""
    (state / "reports").mkdir()  # made by discover
    playbook = state / "report.yml"
    playbook.write_text(
        yaml.safe_dump(
            [{"name": "Report", "hosts": "localhost", "gather_facts": False,
              "roles": [{"role": "sysgenpro.odoo_migration.wave_report"}]}]
        )
    )  # fmt: skip
    rc, output = run_playbook(
        state, playbook, wave_report_state_dir=str(state), wave_report_hosts=hosts, wave_report_wave="wave9"
    )
    assert rc == 0, output
    return (state / "reports/wave-wave9.md").read_text()


ROLLBACK_AFTER_A_FAILED_SWITCH = """
- name: Roll back after a failed switch
  hosts: vm-x
  gather_facts: false
  tasks:
    - name: What the move left
      ansible.builtin.set_fact:
        __app_cutover_sites: []
        __app_cutover_databases: [acme]
        __app_cutover_containers_started: false
        __app_cutover_service: odoo
        __app_cutover_started: "{{ now(utc=true).timestamp() }}"
        __app_cutover_image: {image: "registry/odoo/vm-x:19.0-abc", digest: "sha256:abc"}
        __app_cutover_failure: "switch | Smoke-test each database: version"
    - name: Roll back
      ansible.builtin.include_role:
        name: sysgenpro.odoo_migration.app_cutover
        tasks_from: rollback
"""


def test_a_rollback_that_fails_records_its_outcome_then_fails_the_host(tmp_path):
    """The role's own rollback.yml; its database step fails here (no profile), as a step of a real one can."""
    (tmp_path / "vm-x").mkdir()
    playbook = tmp_path / "rollback.yml"
    playbook.write_text(ROLLBACK_AFTER_A_FAILED_SWITCH)
    rc, output = run_playbook(tmp_path, playbook, hosts=["vm-x"], odoo_migration_state_dir=str(tmp_path))
    assert rc != 0, output
    assert 'vm-x: rollback_failed after "switch | Smoke-test each database: version"' in output
    recorded = yaml.safe_load((tmp_path / "vm-x/app_cutover.yml").read_text())
    assert recorded["outcome"] == "rollback_failed"
    assert recorded["failure"] == "switch | Smoke-test each database: version"
    failed_step = "profile | Require a discovered instance: No profile for vm-x"
    assert recorded["rollback_failure"].startswith(failed_step)
    assert recorded["rollback_smoke"] == {} and recorded["maintenance_seconds"] is None
    assert recorded["digest"] == "sha256:abc"


def test_a_wave_whose_every_host_fails_at_the_cutover_still_writes_its_report(tmp_path):
    """playbooks/app_cutover.yml (wave.yml's end): the host has no profile, so app_cutover fails at once."""
    (tmp_path / "vm-x").mkdir()
    (tmp_path / "reports").mkdir()
    rc, output = run_playbook(
        tmp_path,
        REPO / "playbooks/app_cutover.yml",
        hosts=["vm-x"],
        wave="wave9",
        odoo_migration_state_dir=str(tmp_path),
    )
    assert rc != 0, output
    assert "Write reports/wave-<wave>.md" in output
    assert "Fail the run when a host was rolled back" not in output  # the report play never ran
    report = (tmp_path / "reports/wave-wave9.md").read_text()
    assert "| vm-x | not cut over |" in report


def test_the_wave_report_shows_a_rollback_whose_last_proof_failed(tmp_path):
    failed = "rollback | Prove the VM serves each database again: GET https://10.0.4.21/web/health failed"
    recorded = {
        "host": "vm-a",
        "outcome": "rolled_back_unproven",
        "failure": "switch | Smoke-test each database on the web container: version 18.0 expected",
        "maintenance_seconds": 42.5,
        "image": "registry/odoo/vm-a:19.0-abc",
        "digest": "sha256:abc",
        "filestore": {},
        "smoke": {},
        "rollback_failure": failed,
        "rollback_smoke": {
            "acme": {"passed": ["health"], "failed": ["login"], "error": "login: refused | retried"},
        },
    }
    (tmp_path / "vm-a").mkdir()
    (tmp_path / "vm-a/app_cutover.yml").write_text(yaml.safe_dump(recorded))
    (tmp_path / "vm-b").mkdir()
    (tmp_path / "vm-b/app_cutover.yml").write_text(yaml.safe_dump({"outcome": "moved", "failure": ""}))
    report = render_wave_report(tmp_path, ["vm-a", "vm-b"])
    assert "| vm-a | rolled_back_unproven |" in report
    assert "| 42.5 |" in report
    assert (
        "Moved: 1; rolled back: 0; failed without a proven rollback: 1; "
        "held back (restore drill): 0; hosts: 2." in report
    )
    assert "Failed step: switch | Smoke-test each database on the web container" in report
    assert "Rolled back, not proven: " + failed in report
    assert "| acme | health | login | login: refused / retried |" in report


def test_the_report_says_why_a_host_was_held_back_and_shows_each_drill(tmp_path):
    """A host held back by the restore-drill gate is counted apart and its reason and next step printed."""
    reason = (
        "vm-a was never restore-drilled; its tier allows 24 h. Nothing was moved: run "
        "ansible-playbook sysgenpro.odoo_migration.drill -e wave=vm-a, then the cutover again"
    )
    (tmp_path / "vm-a").mkdir()
    (tmp_path / "vm-a/app_cutover.yml").write_text(
        yaml.safe_dump({"outcome": "held_back", "failure": reason})
    )
    (tmp_path / "vm-b").mkdir()
    (tmp_path / "vm-b/app_cutover.yml").write_text(yaml.safe_dump({"outcome": "moved", "failure": ""}))
    drill = {
        "passed": True,
        "finished_at": "2026-12-07T10:00:00Z",
        "problems": [],
        "backup_set": "20261207-095500F",
        "target": "odoo-migration-drill-20261207T095900Z",
        "restore_seconds": 4.5,
        "recovery_seconds": 1.4,
        "checks_seconds": 2.0,
        "recovery_point": {"time": "2026-12-07T09:59:00.1Z", "source": "last_replayed_transaction"},
    }
    (tmp_path / "vm-b/restore_drill.yml").write_text(yaml.safe_dump(drill))
    report = render_wave_report(tmp_path, ["vm-a", "vm-b"])
    assert "| vm-a | held_back | none |" in report
    assert "| vm-b | moved | passed 2026-12-07T10:00:00Z, restore 4.5 s + recovery 1.4 s |" in report
    assert "held back (restore drill): 1; hosts: 2." in report
    assert "Held back from the cutover: " + reason in report
    assert "recovery point 2026-12-07T09:59:00.1Z (last_replayed_transaction)" in report
