# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Discover the Odoo instances of one host: services, code, settings, data, proxy, databases.

Reads only. Every command runs through the `run` callable given by the module
(AnsibleModule.run_command), so nothing here starts, stops or writes anything.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import hashlib
import json
import os
import pwd
import re
import shlex

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import config as _odoo_conf
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.probe import (
    DATABASE_PROBE,
    INTERPRETER_PROBE,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.proxy import nginx as _nginx

SEVERITY_ORDER = {"blocker": 0, "warning": 1, "info": 2}
NGINX_SITE_GLOBS = ("/etc/nginx/sites-enabled/*", "/etc/nginx/conf.d/*.conf")
MANIFEST_NAMES = ("__manifest__.py", "__openerp__.py")
UNIT_PROPERTIES = (
    "Id,MainPID,User,Group,WorkingDirectory,Environment,EnvironmentFiles,ExecStart,FragmentPath,"
    "ActiveState,SubState,UnitFileState"
)


class DiscoveryError(Exception):
    """Discovery cannot give a faithful answer; the message says what was searched and what to fix."""


def concern(concern_id, severity, subject, message, fix):
    return {"id": concern_id, "severity": severity, "subject": subject, "message": message, "fix": fix}


def sort_concerns(concerns):
    return sorted(concerns, key=lambda item: (SEVERITY_ORDER[item["severity"]], item["id"], item["subject"]))


# --- services -------------------------------------------------------------------------------


def _systemd_units(run):
    rc, out, _err = run(["systemctl", "list-unit-files", "--type=service", "--no-legend", "--no-pager"])
    if rc != 0:
        return []
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    rc, out, _err = run(
        ["systemctl", "list-units", "--type=service", "--all", "--no-legend", "--no-pager", "--plain"]
    )
    if rc == 0:
        names += [line.split()[0] for line in out.splitlines() if line.strip()]
    names = sorted(
        set(name for name in names if name.endswith(".service") and not name.endswith("@.service"))
    )
    if not names:
        return []
    rc, out, _err = run(["systemctl", "show", "--no-pager", "-p", UNIT_PROPERTIES] + names)
    if rc != 0:
        return []
    units = []
    for block in out.strip().split("\n\n"):
        props = {}
        for line in block.splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                props[key] = value
        units.append(props)
    return units


def _exec_start_argv(value):
    match = re.search(r"argv\[\]=(.*?) ; ignore_errors", value or "")
    if not match:
        return []
    try:
        return shlex.split(match.group(1))
    except ValueError:
        return match.group(1).split()


def _read(path, binary=False):
    with open(path, "rb" if binary else "r") as handle:
        return handle.read()


def _process(pid):
    """argv, environment, cwd and user of a running process; parts the kernel withholds are left out."""
    base = "/proc/%s" % pid
    found = {}
    argv = [part.decode("utf-8", "replace") for part in _read(base + "/cmdline", True).split(b"\0") if part]
    if argv:
        found["argv"] = argv
    try:
        environ = {}
        for item in _read(base + "/environ", True).split(b"\0"):
            if b"=" in item:
                key, value = item.decode("utf-8", "replace").split("=", 1)
                environ[key] = value
        found["environ"] = environ
        found["cwd"] = os.readlink(base + "/cwd")
    except (IOError, OSError):
        found["unreadable"] = "environment and working directory (needs CAP_SYS_PTRACE)"
    for line in _read(base + "/status").splitlines():
        if line.startswith("Uid:"):
            found["user"] = pwd.getpwuid(int(line.split()[1])).pw_name
    return found


def _environment_files(value):
    environ = {}
    for path in re.findall(r"(\S+) \(ignore_errors=\w+\)", value or ""):
        try:
            text = _read(path.lstrip("-"))
        except (IOError, OSError):
            continue
        for raw_line in text.splitlines():
            line = raw_line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, raw = line.split("=", 1)
                environ[key.strip()] = raw.strip().strip("'\"")
    return environ


def _odoo_processes():
    """Top-level Odoo processes (not a worker whose parent is Odoo too) with their systemd unit."""
    found = {}
    for path in glob.glob("/proc/[0-9]*"):
        pid = os.path.basename(path)
        try:
            argv = [
                part.decode("utf-8", "replace")
                for part in _read(path + "/cmdline", True).split(b"\0")
                if part
            ]
            stat = _read(path + "/stat")
            cgroup = _read(path + "/cgroup")
        except (IOError, OSError):
            continue
        if argv and _odoo_conf.is_odoo_command(argv):
            unit = re.search(r"/([^/\n]+\.service)", cgroup)
            found[pid] = {"ppid": stat.rsplit(")", 1)[1].split()[1], "unit": unit.group(1) if unit else None}
    return dict((pid, info) for pid, info in found.items() if info["ppid"] not in found)


def find_services(run, wanted=None):
    """Odoo services: systemd units whose command starts Odoo, then Odoo processes outside any such unit."""
    services = []
    for unit in _systemd_units(run):
        argv = _exec_start_argv(unit.get("ExecStart"))
        if not argv or not _odoo_conf.is_odoo_command(argv):
            continue
        main_pid = int(unit.get("MainPID") or 0)
        environ = _environment_files(unit.get("EnvironmentFiles"))
        try:
            environ.update(
                _odoo_conf.resolve_environment_assignments(shlex.split(unit.get("Environment") or ""))
            )
        except ValueError:
            pass
        service = {
            "name": unit["Id"],
            "kind": "systemd",
            "unit_file": unit.get("FragmentPath"),
            "active_state": unit.get("ActiveState"),
            "sub_state": unit.get("SubState"),
            "enabled": unit.get("UnitFileState"),
            "main_pid": main_pid,
            "user": unit.get("User") or "root",
            "group": unit.get("Group") or None,
            "cwd": unit.get("WorkingDirectory") or "/",
            "argv": argv,
            "environ": environ,
            "argv_from": "unit file (not running)",
        }
        if main_pid:
            try:
                process = _process(main_pid)
            except (IOError, OSError):
                process = {}
            if process.get("argv"):
                service["argv_from"] = "running process %d" % main_pid
                if process.get("unreadable"):
                    service["argv_from"] += " (%s unreadable, taken from the unit)" % process.pop(
                        "unreadable"
                    )
                service.update(process)
        services.append(service)
    units = set(service["name"] for service in services)
    for pid, info in sorted(_odoo_processes().items()):
        if info["unit"] in units:
            continue
        try:
            process = _process(pid)
        except (IOError, OSError):
            continue
        process.setdefault("environ", {})
        process.setdefault("cwd", "/")
        process.update(
            {
                "name": info["unit"] or "process %s" % pid,
                "kind": "process",
                "main_pid": int(pid),
                "active_state": "active",
                "argv_from": "running process %s" % pid,
            }
        )
        services.append(process)
    if wanted:
        services = [service for service in services if service["name"] in (wanted, wanted + ".service")]
    return services


# --- code -----------------------------------------------------------------------------------


def _run_as(user, argv):
    """Prefix argv to run as the service user when we are root and it is someone else."""
    if os.geteuid() == 0 and user and user != "root":
        return ["runuser", "-u", user, "--"] + argv
    return argv


def _interpreter_for(script, environ):
    path = script if os.path.isabs(script) else _which(script, environ.get("PATH", "/usr/bin:/bin"))
    if not path:
        raise DiscoveryError("cannot find the Odoo script %r in PATH" % script)
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", "replace").strip()
    if not first.startswith("#!"):
        raise DiscoveryError("%s has no #! line: cannot tell which Python runs it" % path)
    words = first[2:].split()
    if os.path.basename(words[0]) == "env" and len(words) > 1:
        return _which(words[1], environ.get("PATH", "/usr/bin:/bin")) or words[1], path
    return words[0], path


def _which(name, path_value):
    for directory in path_value.split(":"):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _json_run(run, argv, payload, what):
    rc, out, err = run(argv, data=json.dumps(payload))
    if rc != 0:
        raise DiscoveryError("%s failed (rc=%d): %s" % (what, rc, (err or out).strip()[-800:]))
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DiscoveryError("%s printed no JSON: %s" % (what, (out + err).strip()[-800:]))


def release_of(probe):
    """(series, version) from release.py's version_info, e.g. ('19.0', '19.0'), ('17.0', '17.0+e')."""
    parts = probe.get("release", {}).get("version_info") or []
    if len(parts) < 2:
        return None, None
    major = parts[0].strip("'\"")
    series = "%s.%s" % (major, parts[1])
    level = parts[3].upper() if len(parts) > 3 else "FINAL"
    serial = parts[4] if len(parts) > 4 else "0"
    suffix = parts[5].strip("'\"") if len(parts) > 5 else ""
    levels = {"ALPHA": "alpha", "BETA": "beta", "RELEASE_CANDIDATE": "rc", "RC": "rc", "FINAL": ""}
    marker = levels.get(level, level.lower())
    version = series + marker + ("" if not marker or serial in ("0", "") else serial) + suffix
    return series, version


def _git(run, root):
    base = ["git", "-c", "safe.directory=*", "-C", root]
    rc, commit, _err = run(base + ["rev-parse", "HEAD"])
    if rc != 0:
        return {"root": root, "error": "git cannot read this repository"}
    _rc, branch, _err = run(base + ["rev-parse", "--abbrev-ref", "HEAD"])
    _rc, status, _err = run(base + ["status", "--porcelain", "--untracked-files=no"])
    _rc, remote, _err = run(base + ["config", "--get", "remote.origin.url"])
    return {
        "root": root,
        "commit": commit.strip(),
        "branch": branch.strip(),
        "modified_files": len([line for line in status.splitlines() if line.strip()]),
        "remote": re.sub(r"//[^@/]+@", "//<credentials>@", remote.strip()) or None,
    }


def _git_root(path):
    current = path
    while current and current != "/":
        if os.path.exists(os.path.join(current, ".git")):
            return current
        current = os.path.dirname(current)
    return None


def install_of(run, probe, packages):
    odoo_package = probe["odoo_package"]
    install = {"odoo_package": odoo_package, "virtualenv": None, "package": None, "git": None, "pip": None}
    if probe["prefix"] != probe["base_prefix"]:
        install["virtualenv"] = probe["prefix"]
    rc, out, _err = run(["dpkg-query", "-S", os.path.join(odoo_package, "release.py")])
    if rc == 0 and ":" in out:
        name = out.split(":", 1)[0].strip()
        _rc, version, _err = run(["dpkg-query", "-W", "-f", "${Version}", name])
        install["package"] = {"manager": "dpkg", "name": name, "version": version.strip()}
    else:
        rc, out, _err = run(["rpm", "-qf", os.path.join(odoo_package, "release.py")])
        if rc == 0 and out.strip():
            install["package"] = {"manager": "rpm", "name": out.strip(), "version": out.strip()}
    root = _git_root(odoo_package)
    if root:
        install["git"] = _git(run, root)
    for dist in packages:
        if dist["name"].lower() in ("odoo", "openerp") and odoo_package.startswith(
            dist["location"].rstrip("/")
        ):
            install["pip"] = {"name": dist["name"], "version": dist["version"]}
    if install["package"]:
        install["type"] = "distribution package"
    elif install["git"]:
        install["type"] = "source checkout"
    elif install["pip"]:
        install["type"] = "pip"
    else:
        install["type"] = "source tree without version control"
    return install


# --- addons ---------------------------------------------------------------------------------


def read_manifest(addon_dir):
    for name in MANIFEST_NAMES:
        path = os.path.join(addon_dir, name)
        if os.path.isfile(path):
            try:
                return ast.literal_eval(_read(path)), None
            except (ValueError, SyntaxError) as error:
                return None, "%s: %s" % (path, error)
    return None, "no manifest"


def is_addons_dir(path):
    try:
        entries = os.listdir(path)
    except OSError:
        return False
    return any(
        os.path.isfile(os.path.join(path, entry, "__init__.py"))
        and any(os.path.isfile(os.path.join(path, entry, name)) for name in MANIFEST_NAMES)
        for entry in entries
    )


def addon_names(path):
    names = []
    for entry in sorted(os.listdir(path)):
        if any(os.path.isfile(os.path.join(path, entry, name)) for name in MANIFEST_NAMES):
            names.append(entry)
    return names


def tree_checksum(path):
    """SHA-256 over relative paths and contents, byte caches left out: the addon as shipped."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(name for name in dirs if name != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode("utf-8") + b"\0")
            with open(full, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def addons_paths(settings, odoo_package, series):
    """Odoo's search order: its own addons, data_dir/addons/<series>, addons_path, the community dir."""
    base = os.path.join(odoo_package, "addons")
    community = os.path.join(os.path.dirname(odoo_package), "addons")
    data_addons = os.path.join(settings["data_dir"]["value"], "addons", series or "")
    ordered = [(base, "odoo base directory", "core")]
    ordered.append((data_addons, "data_dir/addons/<series>", "custom"))
    for path in settings["addons_path"]["value"] or []:
        ordered.append((path, "addons_path (%s)" % settings["addons_path"]["source"], None))
    ordered.append((community, "community directory next to the odoo package", "core"))
    entries, seen, skipped = [], set(), []
    for path, origin, fixed_kind in ordered:
        real = os.path.realpath(path)
        if real in seen:
            continue
        if not os.path.isdir(path) or not os.access(path, os.R_OK):
            if origin.startswith("addons_path"):
                skipped.append({"path": path, "reason": "no such directory (Odoo skips it)"})
            continue
        if not is_addons_dir(path):
            if origin.startswith("addons_path"):
                skipped.append({"path": path, "reason": "holds no addon (Odoo skips it)"})
            continue
        seen.add(real)
        kind = fixed_kind
        if kind is None:
            kind = "core" if real in (os.path.realpath(base), os.path.realpath(community)) else "custom"
        entries.append({"path": path, "origin": origin, "kind": kind})
    return entries, skipped


def describe_addons(run, entries, probe_packages):
    installed = set(dist["name"].lower().replace("_", "-") for dist in probe_packages)
    custom, first_seen, shadowed = [], {}, []
    for position, entry in enumerate(entries):
        names = addon_names(entry["path"])
        entry["position"] = position
        entry["addons"] = len(names)
        if entry["kind"] == "custom":
            entry["git"] = _git(run, _git_root(entry["path"])) if _git_root(entry["path"]) else None
        for name in names:
            if name in first_seen:
                shadowed.append({"addon": name, "used": first_seen[name], "shadowed": entry["path"]})
                continue
            first_seen[name] = entry["path"]
            if entry["kind"] != "custom":
                continue
            addon_dir = os.path.join(entry["path"], name)
            manifest, error = read_manifest(addon_dir)
            manifest = manifest or {}
            external = manifest.get("external_dependencies") or {}
            python_deps = list(external.get("python") or [])
            custom.append(
                {
                    "name": name,
                    "path": addon_dir,
                    "version": manifest.get("version"),
                    "depends": list(manifest.get("depends") or []),
                    "installable": manifest.get("installable", True),
                    "license": manifest.get("license"),
                    "external_python": python_deps,
                    "external_bin": list(external.get("bin") or []),
                    "external_python_missing": [
                        dep for dep in python_deps if dep.lower().replace("_", "-") not in installed
                    ],
                    "external_bin_missing": [
                        binary
                        for binary in external.get("bin") or []
                        if not _which(binary, "/usr/local/bin:/usr/bin:/bin")
                    ],
                    "checksum": tree_checksum(addon_dir),
                    "manifest_error": error,
                }
            )
    return custom, shadowed


# --- data -----------------------------------------------------------------------------------


def tree_size(path):
    files, size = 0, 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                pass
    return {"path": path, "exists": os.path.isdir(path), "files": files, "bytes": size}


def filestore_size(path):
    """Content files of a filestore; Odoo's garbage-collection markers (checklist/) counted apart.

    Odoo writes a marker for every new file and its autovacuum cron removes them later, so
    counting them in would make the file count move on its own.
    """
    found = {"path": path, "exists": os.path.isdir(path), "files": 0, "bytes": 0}
    for entry in sorted(os.listdir(path)) if found["exists"] else []:
        full = os.path.join(path, entry)
        if entry == "checklist":
            found["gc_markers"] = tree_size(full)["files"]
        elif os.path.isdir(full):
            part = tree_size(full)
            found["files"] += part["files"]
            found["bytes"] += part["bytes"]
        else:
            found["files"] += 1
            found["bytes"] += os.lstat(full).st_size
    found.setdefault("gc_markers", 0)
    return found


def owner_of(path):
    try:
        stat = os.stat(path)
    except OSError:
        return None
    try:
        name = pwd.getpwuid(stat.st_uid).pw_name
    except KeyError:
        name = None
    return {"uid": stat.st_uid, "gid": stat.st_gid, "user": name, "mode": "%04o" % (stat.st_mode & 0o7777)}


def nginx_sites(http_port, gevent_port):
    sites, errors = [], []
    for pattern in NGINX_SITE_GLOBS:
        for path in sorted(glob.glob(pattern)):
            try:
                summary = _nginx.summarize(_read(path), path)
            except (IOError, OSError, _nginx.NginxParseError) as error:
                errors.append("%s: %s" % (path, error))
                continue
            summary["odoo_routes"] = _nginx.odoo_routes(summary, http_port, gevent_port)
            if summary["odoo_routes"]:
                sites.append(summary)
    return sites, errors


# --- one instance ---------------------------------------------------------------------------


def _config_file(service, cli_options, home):
    environ = service["environ"]
    candidates = [os.path.join(home, ".odoorc"), os.path.join(home, ".openerp_serverrc")]
    existing = [path for path in candidates if os.path.isfile(path)]
    chosen, why = _odoo_conf.choose_config_file(cli_options, environ, home, existing)
    if chosen is None:
        return None, why
    path = _odoo_conf.normalize_path(chosen, home, service["cwd"], environ)
    try:
        text = _read(path)
    except (IOError, OSError) as error:
        raise DiscoveryError(
            "cannot read Odoo's config file %s (chosen by %s for %s): %s. Run discovery with become: true, "
            "or fix the path in the service's command line"
            % (path, why, service["name"], error.strerror or error)
        )
    return _odoo_conf.parse_config_text(text, path), why


def describe_instance(run, service, databases=None, python_packages=True):
    interpreter, script, arguments = _odoo_conf.split_interpreter(service["argv"])
    script_path = script
    if interpreter is None:
        interpreter, script_path = _interpreter_for(script, service["environ"])
    elif not script.startswith("-m ") and not os.path.isabs(script):
        script_path = os.path.normpath(os.path.join(service["cwd"], script))
    cli_options, subcommand, cli_notes = _odoo_conf.parse_command_line(arguments)
    try:
        account = pwd.getpwnam(service["user"])
    except KeyError:
        raise DiscoveryError("%s runs as user %r, who is not in passwd" % (service["name"], service["user"]))
    home = _odoo_conf.environ_home(service["environ"], account.pw_dir)
    config, config_why = _config_file(service, cli_options, home)
    script_dir = None if script.startswith("-m ") else os.path.dirname(os.path.realpath(script_path))
    probe = _json_run(
        run,
        _run_as(service["user"], [interpreter, "-c", INTERPRETER_PROBE]),
        {"script_dir": script_dir},
        "asking %s (as %s) where Odoo is" % (interpreter, service["user"]),
    )
    if not probe.get("odoo_package"):
        raise DiscoveryError(
            "%s cannot import odoo (searched from %s); is %s the right interpreter?"
            % (interpreter, script_dir, interpreter)
        )
    series, version = release_of(probe)
    settings, notes, unknown = _odoo_conf.resolve_settings(
        cli_options, service["environ"], config, home, service["cwd"], os.path.isdir(home), series
    )
    install = install_of(run, probe, probe["packages"])
    paths, skipped_paths = addons_paths(settings, probe["odoo_package"], series)
    custom_addons, shadowed = describe_addons(run, paths, probe["packages"])
    data_dir = settings["data_dir"]["value"]
    filestore_root = os.path.join(data_dir, "filestore")
    db_params = {
        "host": settings["db_host"]["value"] or None,
        "port": settings["db_port"]["value"],
        "user": settings["db_user"]["value"] or None,
        "password": settings["db_password"]["value"] or None,
        "sslmode": settings["db_sslmode"]["value"],
        "databases": databases or [],
        "filestore_root": filestore_root,
    }
    found = _json_run(
        run,
        _run_as(service["user"], [interpreter, "-c", DATABASE_PROBE]),
        db_params,
        "reading the databases with %s as %s" % (interpreter, service["user"]),
    )
    endpoint = "%s port %s as %s" % (
        db_params["host"] or "the local Unix socket",
        db_params["port"] or "5432 (libpq default)",
        db_params["user"] or service["user"],
    )
    if found.get("error"):
        message = found["error"]
        if db_params["password"]:
            message = message.replace(db_params["password"], "<redacted>")
        raise DiscoveryError(
            "cannot connect to PostgreSQL at %s (db_host %s, db_port %s, db_user %s): %s. Check those "
            "settings and pg_hba.conf; the password is never shown"
            % (
                endpoint,
                settings["db_host"]["source"],
                settings["db_port"]["source"],
                settings["db_user"]["source"],
                message.splitlines()[0] if message else "no detail",
            )
        )
    served_filter = settings["db_name"]["value"] or []
    dbfilter = settings["dbfilter"]["value"] or ""
    for database in found["databases"]:
        name = database["name"]
        database["filestore"] = filestore_size(os.path.join(filestore_root, name))
        database["filestore"]["owner"] = owner_of(os.path.join(filestore_root, name))
        host_dependent = "%h" in dbfilter or "%d" in dbfilter
        database["served"] = (not served_filter or name in served_filter) and (
            host_dependent or _odoo_conf.dbfilter_matches(dbfilter, name)
        )
        database["served_depends_on_host"] = host_dependent
    http_port = settings["http_port"]["value"]
    gevent_port = settings["gevent_port"]["value"]
    sites, nginx_errors = nginx_sites(http_port, gevent_port)
    secrets = dict(
        (name, _odoo_conf.describe_secret(name, settings[name])) for name in _odoo_conf.SECRET_OPTIONS
    )
    for key in sorted(service["environ"]):
        if _odoo_conf.SECRET_KEY_PATTERN.search(key) and (key.startswith("ODOO") or key.startswith("PG")):
            secrets["environment " + key] = {"present": True, "source": "environment of " + service["name"]}
    instance = {
        "service": {
            "name": service["name"],
            "kind": service["kind"],
            "unit_file": service.get("unit_file"),
            "active_state": service.get("active_state"),
            "enabled": service.get("enabled"),
            "main_pid": service.get("main_pid"),
            "user": service["user"],
            "uid": account.pw_uid,
            "gid": account.pw_gid,
            "home": home,
            "working_directory": service["cwd"],
            "command": _odoo_conf.redact_argv(service["argv"]),
            "command_from": service["argv_from"],
            "subcommand": subcommand,
            "environment": _odoo_conf.environment_for_report(service["environ"]),
        },
        "odoo": {"series": series, "version": version, "install": install},
        "python": {
            "interpreter": interpreter,
            "script": script_path,
            "version": probe["python_version"],
            "virtualenv": install["virtualenv"],
            "packages": probe["packages"] if python_packages else [],
            "packages_in_virtualenv": [item["name"] for item in probe["packages"] if item["in_virtualenv"]],
        },
        "config": {
            "file": config.path if config else None,
            "chosen_by": config_why,
            "errors": config.errors if config else [],
            "duplicates": config.duplicates if config else [],
            "unknown_options": unknown,
            "extra_sections": _odoo_conf.redact_sections(config.sections) if config else {},
            "notes": notes + cli_notes,
        },
        "settings": _odoo_conf.settings_for_report(settings),
        "secrets": secrets,
        "addons_paths": paths,
        "addons_paths_skipped": skipped_paths,
        "custom_addons": custom_addons,
        "shadowed_addons": shadowed,
        "data_dir": {
            "path": data_dir,
            "source": settings["data_dir"]["source"],
            "owner": owner_of(data_dir),
            "sessions": tree_size(os.path.join(data_dir, "sessions")),
        },
        "database_server": {
            "endpoint": endpoint,
            "host": db_params["host"],
            "port": db_params["port"] or int(found.get("server_port") or 5432),
            "user": found.get("connected_as"),
            "version": found.get("server_version"),
        },
        "databases": found["databases"],
        "databases_skipped": found["skipped"],
        "nginx": {"sites": sites, "errors": nginx_errors},
    }
    instance["concerns"] = sort_concerns(instance_concerns(instance, settings))
    return instance


def instance_concerns(instance, settings):
    """What an operator must decide or fix before this instance moves."""
    found = []
    name = instance["service"]["name"]
    for error in instance["config"]["errors"]:
        found.append(
            concern(
                "odoo_config_invalid",
                "blocker",
                instance["config"]["file"],
                error,
                "Fix the line in the config file so Odoo can read it after a restart.",
            )
        )
    for database in instance["databases"]:
        pending = [item["name"] for item in database["modules"] if item["state"] not in ("installed",)]
        if pending:
            found.append(
                concern(
                    "odoo_modules_pending",
                    "blocker",
                    database["name"],
                    "modules not in state installed: %s" % ", ".join(sorted(pending)),
                    "Finish or cancel the pending install/upgrade/removal "
                    "(odoo -u <module> -d %s --stop-after-init, "
                    "or Apps > Cancel) before the move." % database["name"],
                )
            )
        missing = database["attachments"]["missing_files"]
        if missing:
            found.append(
                concern(
                    "odoo_filestore_missing_files",
                    "warning",
                    database["name"],
                    "%d attachment file(s) referenced by ir_attachment are not in %s (e.g. %s)"
                    % (
                        missing,
                        database["filestore"]["path"],
                        ", ".join(database["attachments"]["missing_examples"][:3]),
                    ),
                    "Restore the files from backup or accept that these attachments are already lost.",
                )
            )
        parameters = database["parameters"]
        if parameters.get("web.base.url.freeze") not in ("True", "true", "1"):
            found.append(
                concern(
                    "odoo_base_url_not_frozen",
                    "info",
                    database["name"],
                    "web.base.url is %r and not frozen: the first admin login behind a new proxy rewrites it"
                    % parameters.get("web.base.url"),
                    "The cutover sets web.base.url to the public URL and web.base.url.freeze = True.",
                )
            )
        for key in ("database.uuid", "database.secret"):
            if key not in parameters:
                found.append(
                    concern(
                        "odoo_database_identity_missing",
                        "warning",
                        database["name"],
                        "%s is not set" % key,
                        "Odoo creates it on next start; record it before and after the move.",
                    )
                )
    if settings["admin_passwd"]["source"] == "default":
        found.append(
            concern(
                "odoo_admin_passwd_default",
                "warning",
                name,
                "admin_passwd is not set: the database manager accepts Odoo's well-known default",
                "Set a strong master password; the container config takes it from a secret.",
            )
        )
    elif settings["admin_passwd"]["value"] and not str(settings["admin_passwd"]["value"]).startswith(
        "$pbkdf2"
    ):
        found.append(
            concern(
                "odoo_admin_passwd_plain",
                "warning",
                name,
                "admin_passwd (%s) is stored in clear text" % settings["admin_passwd"]["source"],
                "The container config gets it from a secret; set a hashed one from the database manager.",
            )
        )
    if settings["list_db"]["value"]:
        found.append(
            concern(
                "odoo_list_db_enabled",
                "info",
                name,
                "list_db is on: the database manager is reachable",
                "The container config turns list_db off and sets dbfilter.",
            )
        )
    if not settings["proxy_mode"]["value"] and instance["nginx"]["sites"]:
        found.append(
            concern(
                "odoo_proxy_mode_off",
                "warning",
                name,
                "nginx is in front but proxy_mode is off: Odoo sees the proxy's address and scheme",
                "The container config sets proxy_mode = True.",
            )
        )
    if settings["workers"]["value"] and not any(
        route["websocket_locations"] for site in instance["nginx"]["sites"] for route in site["odoo_routes"]
    ):
        found.append(
            concern(
                "odoo_websocket_not_routed",
                "warning",
                name,
                "workers=%s but no nginx location sends /websocket to gevent_port %s"
                % (settings["workers"]["value"], settings["gevent_port"]["value"]),
                "Route /websocket to the gevent port in the new ingress.",
            )
        )
    for item in instance["addons_paths_skipped"]:
        found.append(
            concern(
                "odoo_addons_path_skipped",
                "info",
                item["path"],
                item["reason"],
                "Remove the entry from addons_path or restore the directory.",
            )
        )
    core_paths = set(entry["path"] for entry in instance["addons_paths"] if entry["kind"] == "core")
    core_duplicates = [
        item
        for item in instance["shadowed_addons"]
        if item["used"] in core_paths and item["shadowed"] in core_paths
    ]
    if core_duplicates:
        found.append(
            concern(
                "odoo_core_addons_duplicated",
                "info",
                name,
                "%d core addons exist twice (e.g. %s in %s); Odoo uses the first copy"
                % (len(core_duplicates), core_duplicates[0]["addon"], core_duplicates[0]["shadowed"]),
                "Nothing to carry: the image's Odoo provides the core addons.",
            )
        )
    for item in instance["shadowed_addons"]:
        if item in core_duplicates:
            continue
        found.append(
            concern(
                "odoo_addon_shadowed",
                "warning",
                item["addon"],
                "%s is in %s and again in %s; Odoo uses the first"
                % (item["addon"], item["used"], item["shadowed"]),
                "The image carries only the copy Odoo uses (%s)." % item["used"],
            )
        )
    for addon in instance["custom_addons"]:
        if addon["external_python_missing"]:
            found.append(
                concern(
                    "odoo_addon_python_dependency_missing",
                    "warning",
                    addon["name"],
                    "external Python dependencies %s are not installed for %s"
                    % (addon["external_python_missing"], instance["python"]["interpreter"]),
                    "Check the import names; the image installs the addon's dependencies.",
                )
            )
        if addon["external_bin_missing"]:
            found.append(
                concern(
                    "odoo_addon_binary_missing",
                    "warning",
                    addon["name"],
                    "external binaries %s are not on this host" % addon["external_bin_missing"],
                    "Add them to the image.",
                )
            )
    if instance["odoo"]["install"].get("git") and instance["odoo"]["install"]["git"].get("modified_files"):
        found.append(
            concern(
                "odoo_source_modified",
                "warning",
                name,
                "%d tracked file(s) of the Odoo checkout differ from commit %s"
                % (
                    instance["odoo"]["install"]["git"]["modified_files"],
                    instance["odoo"]["install"]["git"]["commit"],
                ),
                "Commit the local changes so the image builds from a known tree.",
            )
        )
    for note in instance["config"]["notes"]:
        found.append(
            concern(
                "odoo_config_note",
                "info",
                instance["config"]["file"] or name,
                note,
                "Nothing to do unless the value was meant otherwise.",
            )
        )
    return found


def discover(run, service=None, databases=None, python_packages=True):
    services = find_services(run, service)
    if not services:
        raise DiscoveryError(
            "no Odoo found: searched systemd service units and running processes for commands named %s%s. "
            "If Odoo runs under another name, set `service` to its unit; if it is stopped and has no unit, "
            "start it once"
            % (", ".join(_odoo_conf.ODOO_SCRIPT_NAMES), " matching %r" % service if service else "")
        )
    instances = [describe_instance(run, item, databases, python_packages) for item in services]
    return instances
