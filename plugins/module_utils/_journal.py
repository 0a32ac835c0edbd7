# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Append-only, hash-chained audit journal (migration-state/<host>/journal.jsonl).

Private to this collection. Each record carries the SHA-256 of the previous record, so
an edited, removed or reordered line is detected by verify_journal(). Values of keys
that look like secrets are replaced before anything is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os

GENESIS_HASH = "0" * 64
REDACTED = "********"
SECRET_KEY_MARKERS = ("password", "passwd", "secret", "token", "private_key", "secret_key")


class JournalError(Exception):
    """The journal cannot be read or has been tampered with."""


def redact(value):
    """Return a copy of value with every secret-looking key's value masked."""
    if isinstance(value, dict):
        return dict((key, REDACTED if _is_secret_key(key) else redact(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value


def _is_secret_key(key):
    lowered = str(key).lower()
    return any(marker in lowered for marker in SECRET_KEY_MARKERS)


def _record_hash(record):
    body = dict((key, value) for key, value in record.items() if key != "hash")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_journal(path):
    """Return the journal's records in order ([] when the file does not exist)."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as error:
                raise JournalError("%s line %d is not JSON: %s" % (path, number, error)) from error
    return records


def verify_journal(path):
    """Return a list of problems; an empty list means the chain is intact."""
    problems = []
    previous = GENESIS_HASH
    for index, record in enumerate(read_journal(path)):
        if record.get("seq") != index:
            problems.append("record %d has seq %r" % (index, record.get("seq")))
        if record.get("prev_hash") != previous:
            problems.append("record %d does not follow the record before it" % index)
        if record.get("hash") != _record_hash(record):
            problems.append("record %d was changed after it was written" % index)
        previous = record.get("hash")
    return problems


def append_event(path, event, now=None):
    """Append one event; return the record as written (secrets masked, chain fields added)."""
    if not isinstance(event, dict) or not event.get("action"):
        raise JournalError("a journal event is a mapping with at least an 'action'")
    records = read_journal(path)
    problems = verify_journal(path)
    if problems:
        raise JournalError("refusing to append to a broken journal %s: %s" % (path, "; ".join(problems)))
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    record = redact(event)
    record.update(
        seq=len(records),
        ts=moment.isoformat(),
        prev_hash=records[-1]["hash"] if records else GENESIS_HASH,
    )
    record["hash"] = _record_hash(record)
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, mode=0o750)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return record
