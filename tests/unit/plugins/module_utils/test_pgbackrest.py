"""pgBackRest's reports read as an operator would: info's JSON, verify's text, and what a failure means.

The samples are pgBackRest 2.55.1's own output against the lab's MinIO (trimmed where long).
"""

import json

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import pgbackrest as _pgbackrest

VERIFY_OK = """stanza: legacy-vm-1
status: ok
  archiveId: 17-1, total WAL checked: 3, total valid WAL: 3
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261207-124811F, status: valid, total files checked: 4346, total valid files: 4346
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""

VERIFY_BAD_BACKUP = """stanza: legacy-vm-1
status: error
  archiveId: 17-1, total WAL checked: 3, total valid WAL: 3
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261207-124811F, status: invalid, total files checked: 4346, total valid files: 4345
    missing: 0, checksum invalid: 1, size invalid: 0, other: 0
"""

# After retention expired 163516F in a versioned MinIO bucket: its files are gone (delete markers
# only), yet MinIO still lists its folder.
VERIFY_EXPIRED_LEFTOVER = """stanza: legacy-vm-1
status: ok
  archiveId: 17-1, total WAL checked: 6, total valid WAL: 6
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261207-163516F, status: manifest missing, total files checked: 0, total valid files: 0
  backup: 20261207-163730F, status: valid, total files checked: 4347, total valid files: 4347
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""

VERIFY_NO_INFO = """stanza: legacy-vm-1
status: error
  No usable backup.info file
  No usable archive.info file
"""


def repository_status(message):
    return [
        {
            "archive": [],
            "backup": [],
            "cipher": "none",
            "db": [],
            "name": "legacy-vm-1",
            "repo": [{"cipher": "none", "key": 1, "status": {"code": 99, "message": message}}],
            "status": {"code": 99, "lock": {"backup": {"held": False}}, "message": "other"},
        }
    ]


UNREACHABLE = (
    "[HostConnectError] unable to get address for 'odoo-mig-nowhere': [-2] Name or service not known\n"
    "    [HostConnectError] on 2 retries from 10105-15206ms: unable to get address for 'odoo-mig-nowhere'"
)
FORBIDDEN = (
    "[ProtocolError] HTTP request failed with 403 (Forbidden):\n*** Path/Query ***:\nGET /odoo-backups/\n"
    '*** Response Content ***:\n<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>SignatureDoesNotMatch</Code>"
    "<Message>The request signature we calculated does not match</Message></Error>"
)
NO_BUCKET = (
    "[ProtocolError] HTTP request failed with 404 (Not Found):\n*** Response Content ***:\n"
    "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"
)


def test_a_repository_that_verifies_has_no_problem():
    assert _pgbackrest.parse_verify(VERIFY_OK) == {"status": "ok", "problems": []}


def test_an_invalid_backup_is_named_with_its_counts():
    report = _pgbackrest.parse_verify(VERIFY_BAD_BACKUP)
    assert report["status"] == "error"
    assert report["problems"] == [
        "backup: 20261207-124811F, status: invalid, total files checked: 4346, total valid files: 4345",
        "backup: 20261207-124811F: missing: 0, checksum invalid: 1, size invalid: 0, other: 0",
    ]


def test_missing_info_files_are_problems():
    assert _pgbackrest.parse_verify(VERIFY_NO_INFO)["problems"] == [
        "No usable backup.info file",
        "No usable archive.info file",
    ]


def test_an_empty_report_is_not_ok():
    """Without --verbose pgBackRest prints nothing for a good repository; nothing must not read as ok."""
    assert _pgbackrest.parse_verify("")["status"] == "unknown"


@pytest.mark.parametrize(
    "message, problem, fix",
    [
        (UNREACHABLE, "does not answer", "endpoint's name and port"),
        (FORBIDDEN, "refused the credentials (SignatureDoesNotMatch)", "access key and secret"),
        (NO_BUCKET, "the bucket does not exist", "Create the bucket"),
    ],
)
def test_info_exits_0_but_the_repository_status_says_why(message, problem, fix):
    info = _pgbackrest.parse_info(json.dumps(repository_status(message)), "legacy-vm-1")
    failure = _pgbackrest.explain_repository_status(info, "s3.example:9000")
    assert problem in failure.problem and "s3.example:9000" in failure.problem
    assert fix in failure.fix
    assert "***" not in failure.detail


def test_a_missing_stanza_is_absent_not_broken():
    info = _pgbackrest.parse_info("[]", "legacy-vm-1")
    assert info["status"]["code"] in _pgbackrest.STANZA_ABSENT
    assert _pgbackrest.explain_repository_status(info) is None


def test_an_error_line_of_a_failed_command_is_explained():
    failure = _pgbackrest.explain_failure(
        82,
        "",
        "ERROR: [082]: WAL segment 000000010000000000000005 was not archived before the 60000ms timeout",
    )
    assert failure.problem == "WAL archiving does not reach the repository"
    assert "000000010000000000000005" in failure.detail


def backup(label, kind, stop, error=False):
    return {"label": label, "type": kind, "timestamp": {"start": stop - 60, "stop": stop}, "error": error}


def test_each_check_of_the_baseline_fails_alone():
    now = 1_800_000_000
    info = {
        "name": "vm",
        "status": {"code": 0, "message": "ok"},
        "backup": [backup("F1", "full", now - 10 * 86400), backup("D1", "diff", now - 3600)],
    }
    checks = {
        check["name"]: check
        for check in _pgbackrest.baseline_checks(info, {"status": "ok", "problems": []}, now, 26, 192)
    }
    assert (
        checks["stanza"]["ok"] and checks["newest_backup_age"]["ok"] and checks["repository_verifies"]["ok"]
    )
    assert not checks["newest_full_age"]["ok"]
    assert "F1 is 240.0 h old (policy: at most 192 h)" in checks["newest_full_age"]["detail"]


def test_a_backup_with_errors_does_not_count():
    now = 1_800_000_000
    info = {"name": "vm", "status": {"code": 0}, "backup": [backup("F1", "full", now - 60, error=True)]}
    checks = {check["name"]: check for check in _pgbackrest.baseline_checks(info, None, now, 26, 192)}
    assert (
        not checks["newest_backup_age"]["ok"]
        and checks["newest_backup_age"]["detail"] == "no backup in the repository"
    )
    assert "repository_verifies" not in checks


@pytest.mark.parametrize(
    ("labels", "ok"),
    [(["20261207-163730F"], True), (["20261207-163516F", "20261207-163730F"], False)],
    ids=["expired-leftover-set-aside", "named-backup-without-manifest-fails"],
)
def test_an_expired_backup_still_listed_by_the_store_is_not_a_verify_failure(labels, ok):
    now = 1_800_000_000
    info = {
        "name": "legacy-vm-1",
        "status": {"code": 0},
        "backup": [backup(label, "full", now - 60) for label in labels],
    }
    verify = _pgbackrest.parse_verify(VERIFY_EXPIRED_LEFTOVER)
    assert verify["status"] == "ok" and len(verify["problems"]) == 1
    (check,) = [
        c
        for c in _pgbackrest.baseline_checks(info, verify, now, 26, 192)
        if c["name"] == "repository_verifies"
    ]
    assert check["ok"] is ok
    if ok:
        assert "not counted: expired backups 20261207-163516F" in check["detail"]
    else:
        assert "20261207-163516F, status: manifest missing" in check["detail"]


class Failed(Exception):
    pass


class FakeModule:
    params = {"stanza": "legacy-vm-1", "pgbackrest": "pgbackrest", "config": None}

    def fail_json(self, **result):
        raise Failed(result)

    def run_command(self, argv):
        self.argv = argv
        return 49, "", "ERROR: [049]: unable to get address for 'nowhere'"


def test_a_failure_names_the_stanza_the_problem_and_the_fix_and_keeps_them_in_the_result():
    module, result = FakeModule(), {"problem": None, "fix": None}
    with pytest.raises(Failed) as raised:
        _pgbackrest.runner(module, result, endpoint="nowhere:9000")("info", ["--output=json"])
    failed = raised.value.args[0]
    assert failed["msg"].startswith("the object store at nowhere:9000 does not answer (stanza legacy-vm-1): ")
    assert failed["problem"] == "the object store at nowhere:9000 does not answer"
    assert "endpoint's name and port" in failed["fix"]
    assert module.argv == ["pgbackrest", "--stanza=legacy-vm-1", "--output=json", "info"]
