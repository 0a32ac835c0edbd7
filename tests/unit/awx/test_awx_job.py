"""The AWX job harness itself (tests/awx_job.py), on playbooks that run on this machine: survey answers
checked as AWX checks them, credentials injected from a private file, set_stats handed to the next job, and
a secret used under no_log absent from everything AWX keeps of the job."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
from awx_job import AwxJob, SurveyRefused, survey_of, survey_variables  # noqa: E402

SECRET = "s3cr3t-Not-In-Any-Log"
FIRST = """
- name: First node
  hosts: all
  gather_facts: false
  tasks:
    - name: Use the injected password without showing it
      ansible.builtin.set_fact:
        seen_length: "{{ odoo_migration_odoo_admin_password | length }}"
      no_log: true
    - name: Hand what the next node needs
      ansible.builtin.set_stats:
        data:
          handed: "{{ {inventory_hostname: {'acme': 2.5}} }}"
          wave_seen: "{{ wave }}"
        per_host: false
"""
SECOND = """
- name: Second node
  hosts: all
  gather_facts: false
  tasks:
    - name: Read what the first node handed on
      ansible.builtin.assert:
        that:
          - handed.localhost.acme == 2.5
          - wave_seen == 'wave7'
          - awx_workflow_job_id == 70
"""


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks" / "first.yml").write_text(FIRST)
    (root / "playbooks" / "second.yml").write_text(SECOND)
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    return root, inventory


def template(name, playbook, credential_types=()):
    return {"name": name, "playbook": playbook, "credential_types": list(credential_types)}


WAVE_SURVEY = {"name": "t", "description": "", "spec": [survey_of("odoo-migration discover")["spec"][0]]}


def test_a_workflow_hands_set_stats_to_the_next_job_and_keeps_no_secret(tmp_path, project):
    root, inventory = project
    first = AwxJob(
        tmp_path,
        71,
        template("first", "playbooks/first.yml", ["Odoo migration Odoo administrator"]),
        project=root,
        inventory=inventory,
        answers={"wave": "wave7"},
        credentials={"Odoo migration Odoo administrator": {"admin_password": SECRET}},
        workflow_job_id=70,
        survey=WAVE_SURVEY,
    ).run(timeout=300)
    assert (first.status, first.rc) == ("successful", 0), first.stdout + first.runner_output
    assert first.artifacts == {"handed": {"localhost": {"acme": 2.5}}, "wave_seen": "wave7"}
    assert SECRET not in first.kept_text()
    assert "tmp_credential_0" in first.kept_text()  # passed as -e @file, never as its value
    second = AwxJob(
        tmp_path,
        72,
        template("second", "playbooks/second.yml"),
        project=root,
        inventory=inventory,
        answers={"wave": "wave7"},
        ancestor_artifacts=first.artifacts,
        workflow_job_id=70,
        survey=WAVE_SURVEY,
    ).run(timeout=300)
    assert (second.status, second.rc) == ("successful", 0), second.stdout


def test_a_job_without_the_credentials_its_template_needs_is_refused(tmp_path, project):
    root, inventory = project
    job = AwxJob(
        tmp_path,
        73,
        template("first", "playbooks/first.yml", ["Odoo migration PostgreSQL"]),
        project=root,
        inventory=inventory,
        survey=WAVE_SURVEY,
    )
    with pytest.raises(SurveyRefused, match="Odoo migration PostgreSQL"):
        job.prepare()


def test_survey_answers_are_checked_as_awx_checks_them():
    spec = survey_of("odoo-migration containerize")
    assert survey_variables(spec, {"wave": "wave1"}) == {
        "wave": "wave1",
        "containerize_push": "true",
        "containerize_size_budget_mb": 2560,
        "containerize_sync_filestore": "true",
    }
    with pytest.raises(SurveyRefused, match="integer"):
        survey_variables(spec, {"wave": "wave1", "containerize_size_budget_mb": "4096"})
    with pytest.raises(SurveyRefused, match="one of"):
        survey_variables(spec, {"wave": "wave1", "containerize_push": "yes"})
    with pytest.raises(SurveyRefused, match="'wave' value missing"):
        survey_variables(spec, {})
