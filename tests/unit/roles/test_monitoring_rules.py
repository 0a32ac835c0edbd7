"""baseline_monitoring's alert rules: rendered with the role's defaults, they pass promtool's check and its
unit tests (tests/promtool), and every alert the rules define is tested there."""

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "baseline_monitoring"
TESTS = REPO / "tests" / "promtool" / "odoo-migration.rules.test.yml"


def promtool():
    found = shutil.which("promtool") or str(REPO / ".venv" / "bin" / "promtool")
    assert Path(found).exists(), "promtool is missing: run `make setup` (lab/bootstrap.sh python fetches it)"
    return found


def render_rules(variables):
    environment = jinja2.Environment(
        variable_start_string="[[", variable_end_string="]]", undefined=jinja2.StrictUndefined
    )
    template = environment.from_string((ROLE / "templates" / "odoo-migration.rules.yml.j2").read_text())
    return template.render(ansible_managed="managed", **variables)


@pytest.fixture
def rendered(tmp_path):
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables = {
        key: value for key, value in defaults.items() if key.startswith("baseline_monitoring_alert_")
    }
    variables["baseline_monitoring_certificate_warning_days"] = defaults[
        "baseline_monitoring_certificate_warning_days"
    ]
    (tmp_path / "odoo-migration.rules.yml").write_text(render_rules(variables))
    shutil.copy(TESTS, tmp_path / TESTS.name)
    return tmp_path


def run(*argv, cwd):
    return subprocess.run([promtool(), *argv], cwd=cwd, capture_output=True, text=True, check=False)


def test_rules_pass_promtool_check(rendered):
    result = run("check", "rules", "odoo-migration.rules.yml", cwd=rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((rendered / "odoo-migration.rules.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout + result.stderr


def test_rules_pass_their_unit_tests(rendered):
    result = run("test", "rules", TESTS.name, cwd=rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test(rendered):
    rules = yaml.safe_load((rendered / "odoo-migration.rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert alerts - tested == set()


def test_a_broken_rule_fails_the_check(tmp_path):
    (tmp_path / "broken.yml").write_text(
        "groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: up ==\n"
    )
    result = run("check", "rules", "broken.yml", cwd=tmp_path)
    assert result.returncode != 0
