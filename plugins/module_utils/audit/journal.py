# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Append-only, hash-chained audit journal (migration-state/<host>/journal.jsonl).

Private to this collection. Each record carries the SHA-256 of the previous record, so
an edited, removed or reordered line is detected by verify_journal(), which names the
first bad line. An append reads only the journal's last line (its cost does not grow
with the journal), holds an exclusive lock on the file so that two runs cannot chain to
the same record, and writes the whole line at once. Values of keys that look like
secrets, and secret-looking parts of free text, are masked before anything is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import fcntl
import hashlib
import json
import os
import re

GENESIS_HASH = "0" * 64
REDACTED = "********"
SECRET_KEY_MARKERS = ("password", "passwd", "secret", "token", "private_key", "secret_key")
# How much of the file's end an append reads to find the last record (grows until a line fits).
TAIL_BYTES = 64 * 1024

_SECRET_WORDS = r"[\w.-]*(?:%s)[\w.-]*" % "|".join(SECRET_KEY_MARKERS)
# `password=…`, `PGPASSWORD=…`, `secret_key: …`, `"api_token": "…"` in free text.
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<key>[\"']?%s[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&}\]\"']+)" % _SECRET_WORDS,
    re.IGNORECASE,
)
# `scheme://user:password@host`
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?P<value>[^\s@/]+)(?P<at>@)", re.I)


class JournalError(Exception):
    """The journal cannot be read or written, or has been tampered with."""


def redact_text(text):
    """Free text with secret-looking assignments and URL credentials masked."""

    def assignment(match):
        value = match.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        return match.group("key") + quote + REDACTED + quote

    text = _SECRET_ASSIGNMENT.sub(assignment, text)
    return _URL_CREDENTIALS.sub(lambda m: m.group("head") + REDACTED + m.group("at"), text)


def redact(value):
    """Return a copy of value with every secret-looking key's value and free-text secret masked."""
    if isinstance(value, dict):
        return dict((key, REDACTED if _is_secret_key(key) else redact(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _is_secret_key(key):
    lowered = str(key).lower()
    return any(marker in lowered for marker in SECRET_KEY_MARKERS)


def _record_hash(record):
    body = dict((key, value) for key, value in record.items() if key != "hash")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _numbered_records(path):
    """(line number, record) of every non-blank line; a line that is not JSON raises JournalError."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as error:
                raise JournalError("%s line %d is not JSON: %s" % (path, number, error)) from error


def read_journal(path):
    """Return the journal's records in order ([] when the file does not exist)."""
    return [record for _number, record in _numbered_records(path)]


def first_problem(path):
    """(line number, what is wrong) of the first bad line, or None when the whole chain is intact.
    Reads the file once, line by line."""
    previous, index = GENESIS_HASH, 0
    try:
        for number, record in _numbered_records(path):
            if not isinstance(record, dict):
                return number, "is not a record"
            if record.get("seq") != index:
                return number, "has seq %r where %d was due (a record before it was removed?)" % (
                    record.get("seq"),
                    index,
                )
            if record.get("prev_hash") != previous:
                return number, "does not follow the record before it"
            if record.get("hash") != _record_hash(record):
                return number, "was changed after it was written"
            previous, index = record.get("hash"), index + 1
    except JournalError as error:
        match = re.search(r"line (\d+) is not JSON", str(error))
        return (int(match.group(1)) if match else 0), "is not JSON"
    return None


def verify_journal(path):
    """A list with the first problem as text ('line N ...'); empty when the chain is intact."""
    problem = first_problem(path)
    return [] if problem is None else ["line %d %s" % problem]


def _last_line(handle):
    """(offset where the last line starts, its text, torn): (0, None, False) for an empty file; torn is
    True when that line has no newline (a write cut short)."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return 0, None, False
    window = TAIL_BYTES
    while True:
        start = max(0, size - window)
        handle.seek(start)
        tail = handle.read(size - start)
        torn = not tail.endswith(b"\n")
        body = tail if torn else tail[:-1]
        cut = body.rfind(b"\n")
        if cut >= 0 or start == 0:
            offset = start + cut + 1
            return offset, body[cut + 1 :].decode("utf-8"), torn
        window *= 4


def append_event(path, event, now=None):
    """Append one event; return the record as written (secrets masked, chain fields added).

    Holds an exclusive lock on the journal while it reads the last record and writes the next.
    A last line left without its newline (a writer killed mid-write) was never a record: it is cut off.
    """
    if not isinstance(event, dict) or not event.get("action"):
        raise JournalError("a journal event is a mapping with at least an 'action'")
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        raise JournalError(
            "the journal's directory %s does not exist; create it (the discover phase does) or point "
            "odoo_migration_state_dir at the state directory" % directory
        )
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    with os.fdopen(descriptor, "r+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            offset, line, torn = _last_line(handle)
            if torn:
                handle.truncate(offset)
                offset, line, _torn = _last_line(handle)
            previous = None
            if line is not None and line.strip():
                try:
                    previous = json.loads(line)
                except ValueError:
                    previous = None
                if not isinstance(previous, dict) or previous.get("hash") != _record_hash(previous):
                    raise JournalError(
                        "refusing to append to a broken journal %s: its last record was changed or is not "
                        "a record; check it with the journal verifier" % path
                    )
            record = redact(event)
            record.update(
                seq=previous["seq"] + 1 if previous else 0,
                ts=moment.isoformat(),
                prev_hash=previous["hash"] if previous else GENESIS_HASH,
            )
            record["hash"] = _record_hash(record)
            handle.seek(0, os.SEEK_END)
            handle.write((json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return record
