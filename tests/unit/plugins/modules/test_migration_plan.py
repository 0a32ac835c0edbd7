"""plan.yml: created from the defaults, then only ever extended; the operator's text is never rewritten."""

import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sysgenpro.odoo_migration.plugins.modules import migration_plan

DEFAULTS = {"wave": "wave1", "tenancy": "dedicated", "sizes": {"workers": 2, "database_volume_gib": 1}}


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        migration_plan.main()
    return json.loads(capsys.readouterr().out)


def test_creates_the_plan_with_a_header(tmp_path, capsys):
    path = tmp_path / "host" / "plan.yml"
    result = run(capsys, path=str(path), defaults=DEFAULTS)
    assert result["changed"] is True
    text = path.read_text()
    assert text.startswith("# Decisions for this instance.")
    assert yaml.safe_load(text) == DEFAULTS


def test_second_run_changes_nothing(tmp_path, capsys):
    path = tmp_path / "plan.yml"
    run(capsys, path=str(path), defaults=DEFAULTS)
    before = path.read_text()
    result = run(capsys, path=str(path), defaults=DEFAULTS)
    assert result["changed"] is False
    assert path.read_text() == before


def test_operator_edits_and_comments_survive_and_new_keys_are_appended(tmp_path, capsys):
    path = tmp_path / "plan.yml"
    operator_text = (
        "# reviewed by ops\nwave: wave3  # moved a wave later\ntenancy: shared\nsizes:\n  workers: 8\n"
    )
    path.write_text(operator_text)
    result = run(capsys, path=str(path), defaults=dict(DEFAULTS, namespace="odoo-x"))
    assert result["changed"] is True
    assert result["added"] == ["namespace"]
    assert result["nested_missing"] == ["sizes.database_volume_gib"]
    text = path.read_text()
    assert text.startswith(operator_text)
    assert yaml.safe_load(text)["namespace"] == "odoo-x"
    assert result["plan"]["wave"] == "wave3"
    assert result["plan"]["sizes"] == {"workers": 8, "database_volume_gib": 1}


def test_check_mode_writes_nothing(tmp_path, capsys):
    path = tmp_path / "plan.yml"
    result = run(capsys, path=str(path), defaults=DEFAULTS, _ansible_check_mode=True)
    assert result["changed"] is True
    assert not path.exists()


def test_invalid_yaml_fails_and_keeps_the_file(tmp_path, capsys):
    path = tmp_path / "plan.yml"
    path.write_text("wave: [unclosed\n")
    with patch_module_args({"path": str(path), "defaults": DEFAULTS}), pytest.raises(SystemExit):
        migration_plan.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert "is not valid YAML" in result["msg"] and "delete it" in result["msg"]
    assert path.read_text() == "wave: [unclosed\n"
