#!/usr/bin/env python3
"""Write each AWX job template's survey (awx/surveys/<template>.json) from the roles' argument specs.

awx/job_templates.yml lists the templates and their questions; a question that names a role option takes its
type, choices, default and help from roles/<role>/meta/argument_specs.yml. --check writes nothing and fails
when a committed survey differs from what the specs give (the unit tests run it).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "awx" / "job_templates.yml"
SURVEYS = REPO / "awx" / "surveys"
# AWX's survey types for the argument spec's scalar types; a bool is a true/false choice (AWX has no boolean).
SURVEY_TYPES = {"str": "text", "path": "text", "int": "integer", "float": "float", "bool": "multiplechoice"}
TEXT_MAX = 1024


class SurveyError(Exception):
    pass


def survey_file_name(template_name):
    return re.sub(r"[^a-z0-9]+", "-", template_name.lower()).strip("-") + ".json"


def _plain(text):
    """Ansible doc markup (C(x), I(x), O(x), V(x)) as plain text."""
    return re.sub(r"\b[CIOVBM]\(([^)]*)\)", r"\1", text)


def _description(option):
    text = option.get("description", "")
    return _plain(" ".join(text) if isinstance(text, list) else text).strip()


def _question_name(role, name):
    words = name[len(role) + 1 :] if name.startswith(role + "_") else name
    return words.replace("_", " ").capitalize()


def question_from_spec(role, entry_point, name, specs):
    """One survey question for a role option, or SurveyError naming why it cannot be one."""
    where = f"{name} (role {role}, entry point {entry_point})"
    try:
        option = specs[role][entry_point]["options"][name]
    except KeyError:
        raise SurveyError(f"{where} is not in roles/{role}/meta/argument_specs.yml") from None
    if option.get("no_log"):
        raise SurveyError(
            f"{where} is a secret: give it through an AWX credential (awx/credential_types.yml), "
            "never a survey"
        )
    kind = option.get("type", "str")
    if kind not in SURVEY_TYPES:
        raise SurveyError(
            f"{where} is of type {kind}, which a survey cannot answer: set it in the inventory or "
            "the template's extra vars"
        )
    question = {
        "variable": name,
        "question_name": _question_name(role, name),
        "question_description": _description(option),
        "required": bool(option.get("required", False)),
        "type": SURVEY_TYPES[kind],
    }
    default = option.get("default")
    literal = default is not None and "{{" not in str(default)
    if kind == "bool":
        question["choices"] = ["true", "false"]
        if literal:
            question["default"] = "true" if default else "false"
    elif option.get("choices"):
        question["type"] = "multiplechoice"
        question["choices"] = [str(choice) for choice in option["choices"]]
        if literal:
            question["default"] = str(default)
    else:
        if question["type"] == "text":
            question.update(min=0, max=TEXT_MAX)
        if literal:
            question["default"] = default
    if default is not None and not literal:
        # An unanswered question passes nothing: the role's own default applies (from the inventory).
        question["question_description"] += f" Unanswered: the role's default, {str(default).strip()}."
    return question


def load_specs(roles):
    specs = {}
    for role in sorted(roles):
        path = REPO / "roles" / role / "meta" / "argument_specs.yml"
        if not path.is_file():
            raise SurveyError(f"no role {role} (awx/job_templates.yml names it)")
        specs[role] = yaml.safe_load(path.read_text())["argument_specs"]
    return specs


def surveys(templates):
    """{file name: survey spec} for every job template of awx/job_templates.yml."""
    entries = templates["job_templates"]
    specs = load_specs({q["role"] for entry in entries for q in entry["questions"] if "role" in q})
    result = {}
    for entry in entries:
        spec = []
        for question in entry["questions"]:
            if "role" in question:
                spec.append(
                    question_from_spec(
                        question["role"], question.get("entry_point", "main"), question["option"], specs
                    )
                )
            else:
                spec.append(dict(question))
        variables = [item["variable"] for item in spec]
        if len(variables) != len(set(variables)):
            raise SurveyError(f"job template {entry['name']} asks a variable twice: {variables}")
        result[survey_file_name(entry["name"])] = {
            "name": entry["name"],
            "description": entry["description"],
            "spec": spec,
        }
    return result


def render(survey):
    return json.dumps(survey, indent=2, ensure_ascii=False) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; fail when a survey is out of date"
    )
    args = parser.parse_args(argv)
    try:
        wanted = surveys(yaml.safe_load(TEMPLATES.read_text()))
    except SurveyError as error:
        print(f"awx surveys: {error}", file=sys.stderr)
        return 2
    present = {path.name for path in SURVEYS.glob("*.json")}
    stale = sorted(
        name
        for name, survey in wanted.items()
        if not (SURVEYS / name).is_file() or (SURVEYS / name).read_text() != render(survey)
    ) + sorted(present - set(wanted))
    if args.check:
        if stale:
            print(
                f"awx surveys out of date: {', '.join(stale)}; "
                "run python awx/generate_surveys.py and commit the result",
                file=sys.stderr,
            )
            return 1
        return 0
    SURVEYS.mkdir(exist_ok=True)
    for name in present - set(wanted):
        (SURVEYS / name).unlink()
    for name, survey in wanted.items():
        (SURVEYS / name).write_text(render(survey))
    print(f"awx surveys: {len(wanted)} written, {len(stale)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
