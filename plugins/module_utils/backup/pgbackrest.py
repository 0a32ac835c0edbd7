# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest as the baseline uses it: its command line, its reports, and what they mean.

Private to this collection. pgBackRest's own exit codes are not enough: `info` exits 0 for a
stanza that does not exist and `verify` exits 0 while it prints `status: error` (pgbackrest#2502),
so verdicts come from the JSON of `info` and the text of `verify`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

# info's stanza status codes (src/command/info/info.c).
STATUS_OK = 0
STATUS_MISSING_STANZA_PATH = 1
STATUS_NO_BACKUP = 2
STATUS_MISSING_STANZA_DATA = 3
STANZA_ABSENT = (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA)

_ERROR_LINE = re.compile(r"ERROR: \[(?P<code>\d{3})\]: (?P<text>.*)")
_S3_CODE = re.compile(r"<Code>(?P<code>[A-Za-z]+)</Code>")
_VERIFY_COUNTS = re.compile(r"missing: (\d+), checksum invalid: (\d+), size invalid: (\d+), other: (\d+)")
_ERROR_TYPE = re.compile(r"\[(?P<type>[A-Za-z]+Error)\] (?P<text>.*)")
# The error types a repository status can name, as their exit codes (build/error.yaml).
_ERROR_TYPES = {"HostConnectError": 49, "CryptoError": 95, "ArchiveTimeoutError": 82, "DbConnectError": 56}


class PgBackRestError(Exception):
    """A pgBackRest command failed; `problem` names what, `fix` says what to do."""

    def __init__(self, problem, fix, detail):
        super(PgBackRestError, self).__init__("%s: %s. %s" % (problem, detail, fix))
        self.problem = problem
        self.fix = fix
        self.detail = detail


def command(executable, stanza, action, config=None, include_path=None, options=()):
    """argv for one pgBackRest command; secrets never travel on it (pgBackRest refuses them there)."""
    argv = [executable]
    if config:
        argv.append("--config=%s" % config)
    if include_path:
        argv.append("--config-include-path=%s" % include_path)
    argv.append("--stanza=%s" % stanza)
    argv.extend(options)
    argv.append(action)
    return argv


def explain_failure(rc, stdout, stderr, endpoint=None):
    """Turn a failed command's output into a PgBackRestError that names the problem and the fix."""
    text = "\n".join(part for part in (stderr, stdout) if part)
    match = _ERROR_LINE.search(text)
    code = int(match.group("code")) if match else None
    detail = (
        match.group("text").strip() if match else (text.strip().splitlines() or ["exit code %s" % rc])[-1]
    )
    return _explain(code, detail, text, endpoint, "pgBackRest failed (exit code %s)" % rc)


def explain_repository_status(info, endpoint=None):
    """A repository that `info` could not read (stanza status 99): its own status message, explained.

    `info` exits 0 in that case; the reason is only in `repo[].status.message`, as `[ErrorType] text`.
    """
    for repo in info.get("repo") or []:
        status = repo.get("status") or {}
        if status.get("code") not in (
            None,
            STATUS_OK,
            STATUS_MISSING_STANZA_PATH,
            STATUS_NO_BACKUP,
            STATUS_MISSING_STANZA_DATA,
        ):
            message = status.get("message") or ""
            match = _ERROR_TYPE.match(message)
            code = _ERROR_TYPES.get(match.group("type")) if match else None
            detail = (message.splitlines() or [""])[0]
            if match:
                detail = match.group("text").strip()
            return _explain(code, detail, message, endpoint, "the repository cannot be read")
    return None


def _explain(code, detail, text, endpoint, fallback):
    s3 = _S3_CODE.search(text)
    s3_code = s3.group("code") if s3 else ""
    where = "the object store%s" % (" at %s" % endpoint if endpoint else "")
    if s3_code == "NoSuchBucket":
        return PgBackRestError(
            "the bucket does not exist on %s" % where, "Create the bucket or name an existing one.", detail
        )
    if s3_code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or "with 403" in text:
        return PgBackRestError(
            "%s refused the credentials (%s)" % (where, s3_code or "403"),
            "Check the backups' access key and secret, and that its policy allows the bucket.",
            detail,
        )
    if code == 49 or "unable to get address" in text or "unable to connect" in text:
        return PgBackRestError(
            "%s does not answer" % where,
            "Check the endpoint's name and port and that the VM reaches it.",
            detail,
        )
    if "certificate" in text.lower() or "tls" in detail.lower():
        return PgBackRestError(
            "%s's TLS certificate is not trusted or does not name it" % where,
            "Install the store's CA on the VM (or set the CA file) and use the name its certificate holds.",
            detail,
        )
    if code == 95:
        return PgBackRestError(
            "the repository's passphrase does not open it",
            "Use the passphrase the repository was created with; it cannot change once the stanza exists.",
            detail,
        )
    if code == 82:
        return PgBackRestError(
            "WAL archiving does not reach the repository",
            "Check archive_command and pg_stat_archiver's last_failed_wal on the VM.",
            detail,
        )
    if code == 56:
        return PgBackRestError(
            "pgBackRest cannot connect to the local PostgreSQL",
            "Check pg1-path and pg1-port in pgbackrest.conf against the running cluster.",
            detail,
        )
    return PgBackRestError(fallback, "Read pgBackRest's message.", detail)


def parse_info(stdout, stanza):
    """The stanza's entry of `info --output=json`."""
    try:
        entries = json.loads(stdout or "[]")
    except ValueError as error:
        raise PgBackRestError("pgBackRest's info is not JSON", "Check the installed pgBackRest.", str(error))
    for entry in entries:
        if entry.get("name") == stanza:
            return entry
    return {
        "name": stanza,
        "status": {"code": STATUS_MISSING_STANZA_PATH, "message": "missing stanza path"},
        "backup": [],
        "archive": [],
    }


def summarize_backups(info):
    """The backups of an info entry, oldest first, in the shape the modules return."""
    backups = []
    for backup in info.get("backup") or []:
        timestamp = backup.get("timestamp") or {}
        archive = backup.get("archive") or {}
        size = (backup.get("info") or {}).get("size")
        backups.append(
            {
                "label": backup.get("label"),
                "type": backup.get("type"),
                "start": timestamp.get("start"),
                "stop": timestamp.get("stop"),
                "wal_start": archive.get("start"),
                "wal_stop": archive.get("stop"),
                "size_bytes": size,
                "error": bool(backup.get("error", False)),
            }
        )
    return backups


def parse_verify(text):
    """`verify --output=text --verbose`: its status and the lines that name a problem.

    Without --verbose pgBackRest prints nothing at all for a repository that verifies, so an empty
    report reads as `unknown`, never as ok.
    """
    status = None
    problems = []
    context = ""
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("stanza:"):
            continue
        if line.startswith("status:") and status is None:
            status = line.split(":", 1)[1].strip()
            continue
        counts = _VERIFY_COUNTS.match(line)
        if counts:
            if any(int(value) for value in counts.groups()):
                problems.append("%s: %s" % (context, line) if context else line)
            continue
        if line.startswith("archiveId:") or line.startswith("backup:"):
            context = line.split(",")[0]
            if "status: invalid" in line or ("status:" in line and "status: valid" not in line):
                problems.append(line)
            continue
        # Anything else under the status names a problem (for example "No usable backup.info file").
        problems.append(line)
    return {"status": status or "unknown", "problems": problems}


_VERIFY_NO_MANIFEST = re.compile(
    r"^backup: (?P<label>\S+), status: manifest missing, total files checked: 0,"
)


def without_expired_leftovers(problems, backup_labels):
    """Verify's problems less the expired backups it still finds (problems kept, labels set aside).

    In a versioned bucket an expired backup's files are only hidden behind delete markers, and MinIO
    still lists their folder: verify reports it as a backup whose manifest is missing. A backup that
    backup.info no longer names and of which no file is left is such a leftover; one it names is not.
    """
    kept, expired = [], []
    for problem in problems:
        found = _VERIFY_NO_MANIFEST.match(problem)
        if found and found.group("label") not in backup_labels:
            expired.append(found.group("label"))
        else:
            kept.append(problem)
    return kept, expired


def baseline_checks(info, verify, now, max_backup_age_hours, max_full_age_hours, archived_wal=None):
    """Each check of the backup baseline: name, ok and the detail an operator acts on."""
    checks = []
    code = (info.get("status") or {}).get("code")
    message = (info.get("status") or {}).get("message", "")
    checks.append(
        {
            "name": "stanza",
            "ok": code == STATUS_OK,
            "detail": "stanza %s: %s" % (info.get("name"), message or "ok")
            if code != STATUS_OK
            else "stanza ok",
        }
    )
    backups = [b for b in summarize_backups(info) if not b["error"]]
    newest = backups[-1] if backups else None
    fulls = [b for b in backups if b["type"] == "full"]
    newest_full = fulls[-1] if fulls else None
    for name, backup, limit, what in (
        ("newest_backup_age", newest, max_backup_age_hours, "backup"),
        ("newest_full_age", newest_full, max_full_age_hours, "full backup"),
    ):
        if backup is None:
            checks.append({"name": name, "ok": False, "detail": "no %s in the repository" % what})
            continue
        age = (now - backup["stop"]) / 3600.0
        checks.append(
            {
                "name": name,
                "ok": age <= limit,
                "detail": "newest %s %s is %.1f h old (policy: at most %s h)"
                % (what, backup["label"], age, limit),
            }
        )
    if verify is not None:
        problems, expired = without_expired_leftovers(
            verify["problems"], [b["label"] for b in summarize_backups(info)]
        )
        detail = "verify: %s" % verify["status"]
        if problems:
            detail += "; " + "; ".join(problems)
        if expired:
            detail += (
                " (not counted: expired backups %s, whose deleted files the store still lists as a "
                "folder, as a versioned MinIO bucket does with delete markers)" % ", ".join(expired)
            )
        checks.append(
            {"name": "repository_verifies", "ok": verify["status"] == "ok" and not problems, "detail": detail}
        )
    if archived_wal is not None:
        checks.append(
            {
                "name": "archiving_works_now",
                "ok": bool(archived_wal.get("ok")),
                "detail": archived_wal.get("detail", ""),
            }
        )
    return checks


def argument_spec(**options):
    """The options of every backup module (doc fragment sysgenpro.odoo_migration.pgbackrest) and its own."""
    spec = dict(
        stanza=dict(type="str", required=True),
        config=dict(type="path"),
        pgbackrest=dict(type="path", default="pgbackrest"),
    )
    spec.update(options)
    return spec


def runner(module, result, include_path=None, endpoint=None):
    """run(action, options=(), allow_failure=False) -> (rc, stdout, stderr) for the module's stanza; a
    failure it does not allow ends the module with what is wrong and what to do."""
    params = module.params

    def run(action, options=(), allow_failure=False):
        argv = command(
            params["pgbackrest"], params["stanza"], action, params["config"], include_path, options
        )
        rc, out, err = module.run_command(argv)
        if rc != 0 and not allow_failure:
            fail(module, result, explain_failure(rc, out, err, endpoint))
        return rc, out, err

    return run


def fail(module, result, failure):
    """End the module with what is wrong, for which stanza, and what to do."""
    if "problem" in result:
        result.update(problem=failure.problem, fix=failure.fix)
    module.fail_json(
        msg="%s (stanza %s): %s. %s"
        % (failure.problem, module.params["stanza"], failure.detail, failure.fix),
        **result,
    )
