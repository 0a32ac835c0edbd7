"""Print the main process of a systemd unit and its children: pid, user, cmdline (JSON).

(/proc/PID/cwd would need CAP_SYS_PTRACE, which the lab VMs do not have.)
"""

import json
import os
import pwd
import subprocess
import sys

unit = sys.argv[1]
main_pid = int(
    subprocess.run(
        ["systemctl", "show", unit, "-p", "MainPID", "--value"], capture_output=True, text=True, check=True
    ).stdout
)


def describe(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        cmdline = [part.decode() for part in handle.read().split(b"\0") if part]
    return {
        "pid": pid,
        "user": pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name,
        "cmdline": cmdline,
    }


children = []
for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    try:
        with open(f"/proc/{entry}/stat") as handle:
            parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        if parent == main_pid:
            children.append(describe(int(entry)))
    except (FileNotFoundError, ProcessLookupError):
        continue
print(json.dumps({"main": describe(main_pid), "children": children}))
