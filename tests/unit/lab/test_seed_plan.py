import json

import pytest
import seed_plan


def test_plan_grows_with_the_knob():
    small, large = seed_plan.seed_plan(30), seed_plan.seed_plan(3000)
    for key in ("partners", "documents", "attachments", "audit_log_rows", "messages"):
        assert large[key] > small[key] * 50, key
    assert small["document_partner_links"] == 2 * small["documents"]


def test_byte_budget_tracks_the_requested_size():
    plan = seed_plan.seed_plan(1000)
    planned_bytes = (
        plan["attachments"] * plan["attachment_mean_bytes"]
        + plan["audit_log_rows"] * plan["audit_log_row_bytes"]
    )
    assert 0.6 * 1000 * 2**20 < planned_bytes < 0.8 * 1000 * 2**20


@pytest.mark.parametrize("bad", [0, 4, 20_001, "30", 2.5, True])
def test_out_of_range_or_non_integer_knob_is_refused(bad):
    with pytest.raises(ValueError, match="scale_mb"):
        seed_plan.seed_plan(bad)


def test_command_line_prints_json_or_a_clear_error(capsys):
    assert seed_plan.main(["seed_plan.py", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["scale_mb"] == 30
    assert seed_plan.main(["seed_plan.py", "1"]) == 2
    assert "out of range" in capsys.readouterr().err
