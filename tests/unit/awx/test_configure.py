"""awx/configure.yml: its awx.awx tasks pass only options those modules accept, with every required one, and
every job template it makes has a playbook in the project, a survey and credentials of known types."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
AWX = REPO / "awx"
BIN = Path(sys.executable).parent


class SpecCaptured(Exception):
    pass


def awx_argument_spec(module_name, monkeypatch):
    """The argument spec awx.awx.<module_name> hands ControllerAPIModule, read from the real module."""
    module = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{module_name}")
    captured = {}

    class Capture:
        def __init__(self, argument_spec, **_kwargs):
            captured.update(argument_spec)
            raise SpecCaptured

    monkeypatch.setattr(module, "ControllerAPIModule", Capture)
    with pytest.raises(SpecCaptured):
        module.main()
    return captured


def configure_tasks():
    (play,) = yaml.safe_load((AWX / "configure.yml").read_text())
    return play, [task for task in play["tasks"] if any(key.startswith("awx.awx.") for key in task)]


def test_the_playbook_passes_syntax_check():
    run = subprocess.run(
        [BIN / "ansible-playbook", "--syntax-check", AWX / "configure.yml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_awx_task_passes_only_options_its_module_takes_and_every_required_one(monkeypatch):
    _play, tasks = configure_tasks()
    assert len(tasks) >= 7
    for task in tasks:
        (module_key,) = [key for key in task if key.startswith("awx.awx.")]
        spec = awx_argument_spec(module_key.split(".")[-1], monkeypatch)
        accepted = set(spec) | {alias for option in spec.values() for alias in option.get("aliases", [])}
        given = task[module_key]
        assert set(given) <= accepted, f"{task['name']}: {sorted(set(given) - accepted)}"
        required = {name for name, option in spec.items() if option.get("required")}
        assert required <= set(given), f"{task['name']}: lacks {sorted(required - set(given))}"
        for name, value in given.items():
            choices = spec.get(name, {}).get("choices")
            if choices and isinstance(value, str) and "{{" not in value:
                assert value in choices, f"{task['name']}: {name}={value}"


def test_every_job_template_has_its_playbook_its_survey_and_known_credential_types():
    play, _tasks = configure_tasks()
    templates = yaml.safe_load((AWX / "job_templates.yml").read_text())["job_templates"]
    credential_names = play["vars"]["odoo_migration_awx_credentials"]
    known_types = {
        item["name"]
        for item in yaml.load((AWX / "credential_types.yml").read_text(), Loader=yaml.BaseLoader)[
            "credential_types"
        ]
    }
    assert set(credential_names) == known_types
    for template in templates:
        wrapper = yaml.safe_load((AWX / "project" / template["playbook"]).read_text())
        imported = wrapper[0]["ansible.builtin.import_playbook"]
        assert imported.startswith("sysgenpro.odoo_migration.")
        assert (REPO / "playbooks" / (imported.split(".")[-1] + ".yml")).is_file()
        assert set(template.get("credential_types", [])) <= known_types, template["name"]


def test_the_workflow_approves_before_the_cutover_and_links_only_known_nodes():
    _play, tasks = configure_tasks()
    (workflow,) = [
        task["awx.awx.workflow_job_template"] for task in tasks if "awx.awx.workflow_job_template" in task
    ]
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    for node in nodes.values():
        for links in node.get("related", {}).values():
            assert {link["identifier"] for link in links} <= set(nodes)
    parents = {
        link["identifier"]: name
        for name, node in nodes.items()
        for links in node.get("related", {}).values()
        for link in links
    }
    assert nodes[parents["cutover"]]["unified_job_template"]["type"] == "workflow_approval"
    assert nodes[parents[parents["cutover"]]]["unified_job_template"]["name"] == "odoo-migration rehearse"
