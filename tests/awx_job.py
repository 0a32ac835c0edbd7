"""An AWX job, as AWX hands it to ansible-runner, without AWX.

AWX cannot run here, so the proof of the job templates runs the engine AWX runs jobs with (ansible-runner)
on a private data directory laid out as AWX lays it out (awx/main/tasks/jobs.py, RunJob):

- project/: the project's files; inventory/: the inventory AWX synced;
- env/extravars: the template's survey defaults, then the answers, checked as AWX checks them, then the
  ancestors' artifacts (set_stats of earlier workflow nodes) and AWX's own awx_*/tower_* variables;
- one private file per credential with an extra_vars injector, rendered by AWX's sandboxed Jinja (empty inputs
  left out), passed as -e @file in env/cmdline; env/envvars with the environment AWX sets;
- the artifacts: the playbook_on_stats event's artifact_data (set_stats, per_host false), as AWX keeps them.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "awx"))
from generate_surveys import survey_file_name  # noqa: E402

RUNNER = Path(sys.executable).parent / "ansible-runner"


class SurveyRefused(Exception):
    """What AWX answers a launch whose survey answers do not pass its checks."""


class AwxLoader(yaml.SafeLoader):
    """Reads !unsafe (it keeps Ansible from templating AWX's injector Jinja) as a plain string."""


AwxLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def credential_types():
    text = (REPO / "awx" / "credential_types.yml").read_text()
    return {item["name"]: item for item in yaml.load(text, Loader=AwxLoader)["credential_types"]}


def job_templates():
    return {
        item["name"]: item
        for item in yaml.safe_load((REPO / "awx" / "job_templates.yml").read_text())["job_templates"]
    }


def survey_of(template_name):
    return json.loads((REPO / "awx" / "surveys" / survey_file_name(template_name)).read_text())


def survey_variables(spec, answers):
    """Defaults, then answers, as AWX accepts them (types exact, choices, required, text lengths)."""
    variables = {}
    for question in spec["spec"]:
        name = question["variable"]
        if name in answers:
            value = answers[name]
        elif "default" in question:
            value = question["default"]
        elif question.get("required"):
            raise SurveyRefused(f"'{name}' value missing")
        else:
            continue
        kind = question["type"]
        if kind == "integer" and type(value) is not int:
            raise SurveyRefused(f"Value {value!r} for '{name}' expected to be an integer.")
        if kind == "float" and type(value) not in (int, float):
            raise SurveyRefused(f"Value {value!r} for '{name}' expected to be a numeric type.")
        if kind == "multiplechoice" and value not in question["choices"]:
            raise SurveyRefused(f"Value {value} for '{name}' expected to be one of {question['choices']}.")
        if kind in ("text", "textarea", "password"):
            if not isinstance(value, str):
                raise SurveyRefused(f"Value {value!r} for '{name}' expected to be a string.")
            if question.get("min") not in (None, "") and len(value) < int(question["min"]):
                raise SurveyRefused(f"'{name}' value {value} is too small (length is {len(value)}).")
            if question.get("max") not in (None, "") and len(value) > int(question["max"]):
                raise SurveyRefused(f"'{name}' value is too large (must be no more than {question['max']}).")
        variables[name] = value
    return variables


def injected_extra_vars(credential_type, inputs):
    environment = ImmutableSandboxedEnvironment()
    namespace = {key: value for key, value in inputs.items() if value != ""}
    return {
        name: environment.from_string(template).render(**namespace)
        for name, template in credential_type["injectors"].get("extra_vars", {}).items()
    }


class AwxJob:
    """One job of a job template, run by ansible-runner from a private data directory as AWX builds it."""

    def __init__(
        self,
        base_dir,
        job_id,
        template,
        *,
        project,
        inventory,
        answers=None,
        credentials=None,
        ancestor_artifacts=None,
        environment=None,
        limit=None,
        workflow_job_id=None,
        user="operator",
        survey=None,
    ):
        """template: a job template's name in awx/job_templates.yml, or such an entry itself (with survey)."""
        self.job_id = job_id
        self.template = job_templates()[template] if isinstance(template, str) else template
        self.survey = survey or survey_of(self.template["name"])
        self.private_data_dir = Path(base_dir) / f"awx_{job_id}_job"
        self.project = Path(project)
        self.inventory = Path(inventory)
        self.answers = answers or {}
        self.credentials = credentials or {}
        self.ancestor_artifacts = ancestor_artifacts or {}
        self.environment = environment or {}
        self.limit = limit
        self.workflow_job_id = workflow_job_id
        self.user = user

    def awx_variables(self):
        meta = {
            "job_id": self.job_id,
            "job_launch_type": "workflow" if self.workflow_job_id else "manual",
            "job_template_name": self.template["name"],
            "user_name": self.user,
            "inventory_name": "odoo-migration",
        }
        if self.workflow_job_id:
            meta.update(workflow_job_id=self.workflow_job_id, workflow_job_name="odoo-migration wave")
        return {f"{prefix}_{key}": value for prefix in ("awx", "tower") for key, value in meta.items()}

    def prepare(self):
        missing = set(self.template.get("credential_types", [])) - set(self.credentials)
        if missing:
            raise SurveyRefused(
                f"job template {self.template['name']} needs credentials of type {sorted(missing)}"
            )
        pdd = self.private_data_dir
        if pdd.exists():
            shutil.rmtree(pdd)
        (pdd / "env").mkdir(parents=True)
        pdd.chmod(0o700)
        shutil.copytree(self.project, pdd / "project", symlinks=True)
        (pdd / "inventory").mkdir()
        shutil.copy(self.inventory, pdd / "inventory" / "hosts.json")
        extravars = dict(self.ancestor_artifacts)
        extravars.update(survey_variables(self.survey, self.answers))
        extravars.update(self.awx_variables())
        (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
        cmdline = []
        if self.limit:
            cmdline += ["-l", self.limit]
        types = credential_types()
        for index, (type_name, inputs) in enumerate(sorted(self.credentials.items())):
            injected = injected_extra_vars(types[type_name], inputs)
            path = pdd / "env" / f"tmp_credential_{index}"
            path.write_text(yaml.safe_dump(injected))
            path.chmod(stat.S_IRUSR)
            cmdline += ["-e", f"@{path}"]
        (pdd / "env" / "cmdline").write_text(" ".join(cmdline))
        envvars = {
            "JOB_ID": str(self.job_id),
            "INVENTORY_ID": "1",
            "AWX_PRIVATE_DATA_DIR": str(pdd),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(pdd / "cp"),
        }
        envvars.update(self.environment)
        (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
        (pdd / "env" / "settings").write_text(
            json.dumps({"job_timeout": 3600, "suppress_ansible_output": True})
        )
        return pdd

    def run(self, timeout=3600):
        pdd = self.prepare()
        run = subprocess.run(
            [str(RUNNER), "run", str(pdd), "-p", self.template["playbook"], "--ident", str(self.job_id)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PATH": f"{RUNNER.parent}:{os.environ.get('PATH', '')}"},
        )
        artifacts_dir = pdd / "artifacts" / str(self.job_id)
        status = (
            (artifacts_dir / "status").read_text().strip() if (artifacts_dir / "status").exists() else "error"
        )
        rc = int((artifacts_dir / "rc").read_text()) if (artifacts_dir / "rc").exists() else run.returncode
        return JobResult(self, status, rc, artifacts_dir, run.stdout + run.stderr)


class JobResult:
    def __init__(self, job, status, rc, artifacts_dir, runner_output):
        self.job = job
        self.status = status
        self.rc = rc
        self.artifacts_dir = artifacts_dir
        self.runner_output = runner_output

    @property
    def stdout(self):
        path = self.artifacts_dir / "stdout"
        return path.read_text() if path.exists() else ""

    def events(self):
        for path in sorted((self.artifacts_dir / "job_events").glob("*.json")):
            yield json.loads(path.read_text())

    @property
    def artifacts(self):
        """set_stats (per_host false) as AWX keeps them: the playbook_on_stats event's artifact_data."""
        for event in self.events():
            if event.get("event") == "playbook_on_stats":
                return event.get("event_data", {}).get("artifact_data") or {}
        return {}

    def kept_text(self):
        """Everything AWX keeps of a job: its stdout, its events, its recorded extra vars (job_args)."""
        parts = [self.stdout]
        parts += [json.dumps(event) for event in self.events()]
        command = self.artifacts_dir / "command"
        if command.exists():
            parts.append(command.read_text())
        return "\n".join(parts)
