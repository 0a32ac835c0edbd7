"""AWX surveys: generated from the roles' argument specs, committed, and never out of date."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "awx"))
import generate_surveys  # noqa: E402

SECRET_NAMES = re.compile(r"password|secret_key|cipher_pass|access_key")


def specs(*roles):
    return generate_surveys.load_specs(roles)


def test_the_committed_surveys_are_what_the_argument_specs_give():
    run = subprocess.run(
        [sys.executable, str(REPO / "awx" / "generate_surveys.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_a_changed_argument_spec_is_caught_as_drift(tmp_path, monkeypatch):
    surveys = tmp_path / "surveys"
    surveys.mkdir()
    for path in (REPO / "awx" / "surveys").glob("*.json"):
        (surveys / path.name).write_text(path.read_text())
    survey = surveys / "odoo-migration-containerize.json"
    edited = json.loads(survey.read_text())
    edited["spec"][2]["default"] = 4096  # as if the role's size budget had changed and the survey not
    survey.write_text(json.dumps(edited, indent=2) + "\n")
    monkeypatch.setattr(generate_surveys, "SURVEYS", surveys)
    assert generate_surveys.main(["--check"]) == 1
    assert generate_surveys.main([]) == 0
    assert generate_surveys.main(["--check"]) == 0


def test_every_survey_is_one_awx_accepts():
    for path in (REPO / "awx" / "surveys").glob("*.json"):
        survey = json.loads(path.read_text())
        assert set(survey) == {"name", "description", "spec"}
        for question in survey["spec"]:
            assert question["type"] in {"text", "textarea", "integer", "float", "multiplechoice"}
            assert {"variable", "question_name", "required", "type"} <= set(question)
            if "default" in question and question["type"] == "multiplechoice":
                assert question["default"] in question["choices"]
            if question["type"] == "integer" and "default" in question:
                assert type(question["default"]) is int  # AWX checks the exact type


def test_a_bool_is_a_true_false_choice_and_a_templated_default_is_left_to_the_role():
    found = specs("pg_replicate", "containerize")
    push = generate_surveys.question_from_spec("containerize", "main", "containerize_push", found)
    assert (
        push["type"] == "multiplechoice"
        and push["choices"] == ["true", "false"]
        and push["default"] == "true"
    )
    policy = generate_surveys.question_from_spec(
        "pg_replicate", "main", "pg_replicate_replica_identity_policy", found
    )
    assert policy["choices"] == ["full", "refuse"] and "default" not in policy
    assert "odoo_migration_replica_identity_policy" in policy["question_description"]


@pytest.mark.parametrize(
    ("role", "option", "reason"),
    [
        ("baseline_backup", "baseline_backup_cipher_pass", "credential"),
        ("app_cutover", "app_cutover_smoke_checks", "type list"),
        ("finalize", "finalize_no_such_option", "not in roles/finalize"),
    ],
)
def test_a_question_that_cannot_be_one_is_refused_with_the_reason(role, option, reason):
    with pytest.raises(generate_surveys.SurveyError, match=reason):
        generate_surveys.question_from_spec(role, "main", option, specs(role))


def test_every_secret_option_of_every_role_is_no_log():
    exposed = []
    for path in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        for entry_point, spec in yaml.safe_load(path.read_text())["argument_specs"].items():
            for name, option in (spec.get("options") or {}).items():
                if SECRET_NAMES.search(name) and not option.get("no_log"):
                    exposed.append(f"{path.parts[-3]} {entry_point} {name}")
    assert exposed == []
