# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move an Odoo filestore: content-addressed, so the delta is a set difference of names.

Odoo stores an attachment as `<filestore>/<sha1[:2]>/<sha1>` and never rewrites a file in
place, so two trees are in sync when they hold the same names, and a file is intact when
the SHA-1 of its content equals its name. No rolling checksums, no timestamps: list both
sides, send what the destination lacks as one tar stream, then prove every file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor

CONTENT_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{40}$")
GC_DIR = "checklist"


def parse_listing(text):
    """`find -printf '%P\\t%s\\n'` output into {relative path: size}; GC markers left out."""
    files = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        path, _tab, size = line.rpartition("\t")
        if path.split("/", 1)[0] == GC_DIR:
            continue
        files[path] = int(size)
    return files


def local_listing(root):
    """{relative path: size} of a local filestore, GC markers left out."""
    files = {}
    if not os.path.isdir(root):
        return files
    for directory, dirs, names in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        if relative_dir == ".":
            dirs[:] = [name for name in dirs if name != GC_DIR]
        for name in names:
            full = os.path.join(directory, name)
            relative = os.path.normpath(os.path.join(relative_dir, name))
            files[relative] = os.lstat(full).st_size
    return files


def plan_delta(source, destination):
    """What to send (missing or a different size at the destination) and what only the destination has."""
    send = sorted(path for path, size in source.items() if destination.get(path) != size)
    extra = sorted(set(destination) - set(source))
    return send, extra


def sha1_of(path):
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_tree(root, paths, jobs=4):
    """Paths whose content does not hash to their name (content-addressed files only)."""
    checked = [path for path in paths if CONTENT_NAME.match(path)]

    def bad(path):
        try:
            return None if sha1_of(os.path.join(root, path)) == path.split("/")[1] else path
        except (IOError, OSError):
            return path

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        corrupt = [path for path in pool.map(bad, checked) if path]
    return len(checked), sorted(corrupt)


def missing_attachments(store_fnames, files):
    """ir_attachment.store_fname values that have no file."""
    return sorted(name for name in set(store_fnames) if name not in files)


def fix_ownership(root, uid, gid):
    """chown the tree to the container user; returns how many entries changed."""
    changed = 0
    for directory, _dirs, names in os.walk(root):
        for name in [""] + names:
            full = os.path.join(directory, name) if name else directory
            stat = os.lstat(full)
            if stat.st_uid != uid or stat.st_gid != gid:
                os.lchown(full, uid, gid)
                changed += 1
    return changed
