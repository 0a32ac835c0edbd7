"""Print a content tag for an image build context.

The tag changes when any file of the context, or anything named on the command line
(the base image's ID), changes; so the lab rebuilds exactly what changed and a second
`make lab-up` rebuilds nothing.
usage: context_tag.py CONTEXT_DIR [EXTRA ...]
"""

import hashlib
import os
import sys


def context_tag(context_dir, extras=()):
    digest = hashlib.sha256()
    for extra in extras:
        digest.update(b"extra\0" + extra.encode() + b"\0")
    for root, dirs, files in os.walk(context_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, context_dir)
            mode = os.stat(path).st_mode & 0o777
            digest.update(f"file\0{relative}\0{mode:o}\0".encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return "ctx-" + digest.hexdigest()[:16]


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        print("usage: context_tag.py CONTEXT_DIR [EXTRA ...]", file=sys.stderr)
        sys.exit(2)
    print(context_tag(sys.argv[1], sys.argv[2:]))
