"""Print {relative path: sha1 of content} for every file under a filestore directory."""

import hashlib
import json
import os
import sys

root = sys.argv[1]
digests = {}
for directory, _, files in os.walk(root):
    for name in files:
        path = os.path.join(directory, name)
        with open(path, "rb") as handle:
            digests[os.path.relpath(path, root)] = hashlib.sha1(handle.read()).hexdigest()
print(json.dumps(digests))
