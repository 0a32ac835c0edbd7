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


WAVE_SURVEY = {"name": "t", "description": "", "spec": [survey_of("odoo-migration discover")["spec"][0]]}


@pytest.fixture
def local_job(tmp_path, project):
    """A job of a template of its own (playbook in the local project, the wave question), in workflow 70."""
    root, inventory = project

    def job(job_id, playbook, credential_types=(), **options):
        template = {"name": playbook, "playbook": playbook, "credential_types": list(credential_types)}
        return AwxJob(
            tmp_path,
            job_id,
            template,
            project=root,
            inventory=inventory,
            survey=WAVE_SURVEY,
            workflow_job_id=70,
            **options,
        )

    return job


def test_a_workflow_hands_set_stats_to_the_next_job_and_keeps_no_secret(local_job):
    first = local_job(
        71,
        "playbooks/first.yml",
        ["Odoo migration Odoo administrator"],
        answers={"wave": "wave7"},
        credentials={"Odoo migration Odoo administrator": {"admin_password": SECRET}},
    ).run(timeout=300)
    assert (first.status, first.rc) == ("successful", 0), first.stdout + first.runner_output
    assert first.artifacts == {"handed": {"localhost": {"acme": 2.5}}, "wave_seen": "wave7"}
    assert SECRET not in first.kept_text()
    assert "tmp_credential_0" in first.kept_text()  # passed as -e @file, never as its value
    second = local_job(
        72, "playbooks/second.yml", answers={"wave": "wave7"}, ancestor_artifacts=first.artifacts
    ).run(timeout=300)
    assert (second.status, second.rc) == ("successful", 0), second.stdout


def test_a_job_without_the_credentials_its_template_needs_is_refused(local_job):
    job = local_job(73, "playbooks/first.yml", ["Odoo migration PostgreSQL"])
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
