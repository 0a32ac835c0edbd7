"""cutover_summary, smoke_summary: what state files keep of pg_cutover, pg_compare, smoke results."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sysgenpro.odoo_migration.plugins.filter.migration import (
    FilterModule,
    cutover_summary,
    replication_login,
    smoke_summary,
)

SWITCH = {
    "changed": True,
    "state": "switched",
    "direction": "forward",
    "write_unavailable_seconds": 0.412,
    "point_of_no_return_passed": True,
    "aborted": False,
    "abort_reason": None,
    "steps": [{"step": "fence", "seconds": 0.1, "budget_seconds": 10.0, "ok": True, "detail": {"x": 1}}],
    "sequences": {"copied": 3, "owned": 2, "standalone": ["public.ir_sequence_001"], "guard_violations": []},
    "invocation": {"module_args": {"target_conninfo_from_source": "password=secret"}},
    "__cutover_db": "acme",
}
COMPARE = {
    "changed": False,
    "equal": False,
    "tables_compared": 5,
    "rows_compared": 100,
    "chunks_compared": 7,
    "sequences_compared": 3,
    "differences": [{"kind": "rows", "table": f"t{i}"} for i in range(25)],
    "invocation": {"module_args": {"source": {"password": "secret"}}},
}


def test_keeps_the_measurements_and_never_the_arguments():
    summary = cutover_summary((SWITCH, COMPARE))
    assert summary["write_unavailable_seconds"] == 0.412 and summary["changed"] is True
    assert summary["steps"] == [{"step": "fence", "seconds": 0.1, "budget_seconds": 10.0, "ok": True}]
    assert summary["sequences"] == {"copied": 3, "owned": 2, "standalone": 1, "guard_violations": []}
    assert summary["compare"]["equal"] is False and summary["compare"]["differences_total"] == 25
    assert len(summary["compare"]["differences"]) == 20
    assert "secret" not in repr(summary) and "invocation" not in repr(summary)


def test_a_skipped_or_missing_comparison_is_left_out():
    assert "compare" not in cutover_summary((SWITCH, {"skipped": True, "changed": False}))
    assert "compare" not in cutover_summary(SWITCH)
    assert cutover_summary(({"changed": False, "state": "done", "steps": []}, {}))["steps"] == []


def test_registered_as_a_filter():
    assert FilterModule().filters()["cutover_summary"] is cutover_summary


def test_smoke_summary_says_which_proofs_passed_and_failed_even_when_the_loop_failed():
    results = [
        {
            "item": "globex",
            "failed": False,
            "checks": [{"name": "health", "ok": True}, {"name": "login", "ok": True}],
            "invocation": {"module_args": {"password": "secret"}},
        },
        {
            "item": "initech",
            "failed": True,
            "msg": "smoke test failed: login: login refused for admin",
            "checks": [{"name": "health", "ok": True}, {"name": "login", "ok": False}],
        },
        {"item": "acme", "failed": True, "msg": "ca_path /x.pem is not a file", "checks": []},
    ]
    assert smoke_summary(results) == {
        "globex": {"passed": ["health", "login"], "failed": [], "error": ""},
        "initech": {
            "passed": ["health"],
            "failed": ["login"],
            "error": "smoke test failed: login: login refused for admin",
        },
        "acme": {"passed": [], "failed": [], "error": "ca_path /x.pem is not a file"},
    }
    assert "secret" not in repr(smoke_summary(results))
    assert smoke_summary(None) == {}
    assert FilterModule().filters()["smoke_summary"] is smoke_summary


def test_replication_login_names_each_direction_and_refuses_another():
    assert replication_login("legacy-vm-1") == "odoo_migration_return_legacy_vm_1"
    assert replication_login("Legacy.VM-1", "forward") == "odoo_migration_forward_legacy_vm_1"
    assert len(replication_login("x" * 80, "forward")) == 63
    with pytest.raises(AnsibleFilterError, match="direction must be one of return, forward"):
        replication_login("legacy-vm-1", "sideways")
