# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move an Odoo filestore: content-addressed, so the delta is a set difference of names.

Odoo stores an attachment as `<filestore>/<sha1[:2]>/<sha1>` and never rewrites a file in
place, so two trees are in sync when they hold the same names, and a file is intact when
the SHA-1 of its content equals its name. No rolling checksums, no timestamps: list both
sides, send what the destination lacks as tar streams (one per group of directories, in
parallel), then prove every file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import shlex
from concurrent.futures import ThreadPoolExecutor

CONTENT_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{40}$")
GC_DIR = "checklist"
# One sha1sum line of a content file is 86 bytes; 40 of them stay under PIPE_BUF (4096), so
# the parallel sha1sum processes of remote_verify_command never interleave inside a line.
SHA1SUM_BATCH = 40
ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$")


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


def partition_by_directory(paths, parts):
    """Split paths into at most ``parts`` groups, every top-level directory whole in one group.

    Parallel tar streams into one tree must not create the same directory at the same time
    (one tar's mkdir races another's open), so a directory never spans two streams. Groups are
    balanced by file count, biggest directories first; Odoo's <sha1[:2]> directories are even.
    """
    directories = {}
    for path in paths:
        directories.setdefault(path.split("/", 1)[0], []).append(path)
    groups = [[] for _index in range(max(1, min(parts, len(directories))))]
    for _name, members in sorted(directories.items(), key=lambda item: (-len(item[1]), item[0])):
        min(groups, key=len).extend(members)
    return [group for group in groups if group]


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


def fix_ownership(root, uid, gid, apply=True):
    """chown the tree to the container user; returns how many entries changed (would change)."""
    changed = 0
    for directory, _dirs, names in os.walk(root):
        for name in [""] + names:
            full = os.path.join(directory, name) if name else directory
            stat = os.lstat(full)
            if stat.st_uid != uid or stat.st_gid != gid:
                if apply:
                    os.lchown(full, uid, gid)
                changed += 1
    return changed


def remote_listing_command(root):
    """Shell that prints `find -printf '%P\\t%s\\n'` of root, or nothing when root does not exist yet."""
    quoted = shlex.quote(root)
    return "if test -d %s; then find %s -type f -printf '%%P\\t%%s\\n'; fi" % (quoted, quoted)


def remote_verify_command(root, jobs=4):
    """Shell that hashes the NUL-separated relative paths on its stdin, under root, in parallel."""
    return "cd %s && xargs -0 -r -n %d -P %d sha1sum --" % (shlex.quote(root), SHA1SUM_BATCH, max(1, jobs))


def parse_sha1sum(text, paths):
    """Which of paths (content-addressed ones only) sha1sum did not report with a digest equal to the name.

    A file sha1sum could not read has no line, so it counts as corrupt too."""
    checked = [path for path in paths if CONTENT_NAME.match(path)]
    digests = {}
    for line in text.splitlines():
        digest, _sep, path = line.partition("  ")
        if path:
            digests[path] = digest
    corrupt = sorted(path for path in checked if digests.get(path) != path.split("/")[1])
    return len(checked), corrupt


def account(value, what):
    """An owner or group given as a name or a numeric id, checked to be safe on a remote command line."""
    text = str(value).strip()
    if not ACCOUNT.match(text):
        raise ValueError("%s %r is neither a user/group name nor a numeric id" % (what, value))
    return text


def local_id(value, lookup):
    """A numeric id, or the id of a name through lookup (pwd.getpwnam / grp.getgrnam)."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    return lookup(text)[2]


def remote_chown_command(root, owner, group, apply=True):
    """Shell that gives root and everything under it owner:group and prints one line per entry changed.

    Without apply it only prints the lines: what check mode reports.

    find and chown both take a name or a numeric id; an unknown name fails the command."""
    owner, group = account(owner, "owner"), account(group, "group")
    quoted = shlex.quote(root)
    changed = "\\( ! -user %s -o ! -group %s \\) " % (shlex.quote(owner), shlex.quote(group))
    if apply:
        changed += "-exec chown -h %s {} + " % shlex.quote("%s:%s" % (owner, group))
    changed += "-printf '.\\n'"
    return "if test -d %s; then find %s %s; fi" % (quoted, quoted, changed)


def remote_account_check_command(owner, group):
    """Shell that fails, naming it, when owner or group is a name the host does not know (ids always pass)."""
    checks = []
    for database, value in (("passwd", account(owner, "owner")), ("group", account(group, "group"))):
        if not value.isdigit():
            checks.append(
                "getent %s %s >/dev/null || { echo 'no %s %s on this host' >&2; exit 3; }"
                % (database, shlex.quote(value), "user" if database == "passwd" else "group", value)
            )
    return "; ".join(checks) or "true"


def remote_delete_command(root):
    """Shell that removes the NUL-separated relative paths on its stdin, under root."""
    return "cd %s && xargs -0 -r rm -f --" % shlex.quote(root)


def write_lines(path, lines):
    """Write one entry per line, replacing the file at once (a reader never sees half of it)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w") as handle:
        handle.write("".join(line + "\n" for line in lines))
    os.chmod(partial, 0o644)
    os.replace(partial, path)
