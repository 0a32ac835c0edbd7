# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve an Odoo server's effective settings the way Odoo itself does.

Pure functions (no I/O) so every rule is unit-tested: the config file is read as
Python's RawConfigParser reads it (full-line `;`/`#` comments, no inline comments,
`=` or `:`, indented continuation lines, lower-cased keys), the command line as Odoo's
optparse parser reads it, and values are layered command line > environment > config
file > defaults, as Odoo 19's ChainMap does. `False` on a non-boolean option means
"unset" (Odoo 19 skips it; older releases treated it as falsy), `None` means None.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

# type, default, command-line flags, environment variable (Odoo 19; PG* are also read by libpq)
# Types: string, int, float, path, comma, addons_path, flag (store_true), noflag (store_false).
OPTIONS = {
    "config": ("path", None, ("-c", "--config"), "ODOO_RC"),
    "admin_passwd": ("string", "admin", (), "ODOO_ADMIN_PASSWD"),
    "addons_path": ("addons_path", [], ("--addons-path",), "ODOO_ADDONS_PATH"),
    "upgrade_path": ("addons_path", [], ("--upgrade-path",), "ODOO_UPGRADE_PATH"),
    "server_wide_modules": ("comma", ["base", "rpc", "web"], ("--load",), "ODOO_SERVER_WIDE_MODULES"),
    "data_dir": ("path", None, ("-D", "--data-dir"), "ODOO_DATA_DIR"),
    "http_interface": (
        "string",
        "0.0.0.0",
        ("--http-interface", "--xmlrpc-interface"),
        "ODOO_HTTP_INTERFACE",
    ),
    "http_port": ("int", 8069, ("-p", "--http-port", "--xmlrpc-port"), "ODOO_HTTP_PORT"),
    "gevent_port": ("int", 8072, ("--gevent-port", "--longpolling-port"), "ODOO_GEVENT_PORT"),
    "longpolling_port": ("int", None, (), None),
    "http_enable": ("noflag", True, ("--no-http", "--no-xmlrpc"), "ODOO_HTTP_ENABLE"),
    "proxy_mode": ("flag", False, ("--proxy-mode",), "ODOO_PROXY_MODE"),
    "x_sendfile": ("flag", False, ("--x-sendfile",), "ODOO_X_SENDFILE"),
    "dbfilter": ("string", "", ("--db-filter",), "ODOO_DBFILTER"),
    "logfile": ("path", "", ("--logfile",), "ODOO_LOGFILE"),
    "syslog": ("flag", False, ("--syslog",), "ODOO_SYSLOG"),
    "log_handler": ("comma", [":INFO"], ("--log-handler",), "ODOO_LOG_HANDLER"),
    "log_level": ("string", "info", ("--log-level",), "ODOO_LOG_LEVEL"),
    "log_db": ("string", "", ("--log-db",), "ODOO_LOG_DB"),
    "email_from": ("string", "", ("--email-from",), "ODOO_EMAIL_FROM"),
    "from_filter": ("string", "", ("--from-filter",), "ODOO_FROM_FILTER"),
    "smtp_server": ("string", "localhost", ("--smtp",), "ODOO_SMTP_SERVER"),
    "smtp_port": ("int", 25, ("--smtp-port",), "ODOO_SMTP_PORT"),
    "smtp_ssl": ("flag", False, ("--smtp-ssl",), "ODOO_SMTP_SSL"),
    "smtp_user": ("string", "", ("--smtp-user",), "ODOO_SMTP_USER"),
    "smtp_password": ("string", "", ("--smtp-password",), "ODOO_SMTP_PASSWORD"),
    "db_name": ("comma", [], ("-d", "--database"), "PGDATABASE"),
    "db_user": ("string", "", ("-r", "--db_user"), "PGUSER"),
    "db_password": ("string", "", ("-w", "--db_password"), "PGPASSWORD"),
    "db_host": ("string", "", ("--db_host",), "PGHOST"),
    "db_port": ("int", None, ("--db_port",), "PGPORT"),
    "db_replica_host": ("string", None, ("--db_replica_host",), "PGHOST_REPLICA"),
    "db_replica_port": ("int", None, ("--db_replica_port",), "PGPORT_REPLICA"),
    "db_sslmode": ("string", "prefer", ("--db_sslmode",), "PGSSLMODE"),
    "db_maxconn": ("int", 64, ("--db_maxconn",), "ODOO_DB_MAXCONN"),
    "db_template": ("string", "template0", ("--db-template",), "PGDATABASE_TEMPLATE"),
    "pg_path": ("path", "", ("--pg_path",), "PGPATH"),
    "list_db": ("noflag", True, ("--no-database-list",), "ODOO_LIST_DB"),
    "unaccent": ("flag", False, ("--unaccent",), "ODOO_UNACCENT"),
    "without_demo": ("string", None, ("--without-demo",), None),
    "with_demo": ("flag", False, ("--with-demo",), "ODOO_WITH_DEMO"),
    "workers": ("int", 0, ("--workers",), "ODOO_WORKERS"),
    "max_cron_threads": ("int", 2, ("--max-cron-threads",), "ODOO_MAX_CRON_THREADS"),
    "limit_memory_soft": ("int", 2147483648, ("--limit-memory-soft",), "ODOO_LIMIT_MEMORY_SOFT"),
    "limit_memory_hard": ("int", 2684354560, ("--limit-memory-hard",), "ODOO_LIMIT_MEMORY_HARD"),
    "limit_time_cpu": ("int", 60, ("--limit-time-cpu",), "ODOO_LIMIT_TIME_CPU"),
    "limit_time_real": ("int", 120, ("--limit-time-real",), "ODOO_LIMIT_TIME_REAL"),
    "limit_time_real_cron": ("int", -1, ("--limit-time-real-cron",), "ODOO_LIMIT_TIME_REAL_CRON"),
    "limit_request": ("int", 65536, ("--limit-request",), "ODOO_LIMIT_REQUEST"),
    "geoip_city_db": ("path", "/usr/share/GeoIP/GeoLite2-City.mmdb", ("--geoip-city-db", "--geoip-db"), None),
    "geoip_country_db": ("path", "/usr/share/GeoIP/GeoLite2-Country.mmdb", ("--geoip-country-db",), None),
    "pidfile": ("path", "", ("--pidfile",), "ODOO_PIDFILE"),
    "dev_mode": ("comma", [], ("--dev",), "ODOO_DEV"),
    "proxy_access_token": ("string", "", (), "ODOO_PROXY_ACCESS_TOKEN"),
}
# Command-line-only options that take a value (so the parser does not mistake the value for an argument).
CLI_ONLY_WITH_VALUE = {
    "-i": "init",
    "--init": "init",
    "-u": "update",
    "--update": "update",
    "--reinit": "reinit",
    "--test-tags": "test_tags",
    "--test-file": "test_file",
    "-P": "import_partial",
    "--import-partial": "import_partial",
    "--load-language": "load_language",
    "--i18n-export": "translate_out",
    "--i18n-import": "translate_in",
    "--language": "language",
    "-l": "language",
    "--modules": "translate_modules",
    "--db_app_name": "db_app_name",
    "--db_maxconn_gevent": "db_maxconn_gevent",
    "--transient-age-limit": "transient_age_limit",
    "--osv-memory-count-limit": "osv_memory_count_limit",
    "--limit-time-worker-cron": "limit_time_worker_cron",
    "--screencasts": "screencasts",
    "--screenshots": "screenshots",
    "--log-db-level": "log_db_level",
    "--smtp-ssl-certificate-filename": "smtp_ssl_certificate_filename",
    "--smtp-ssl-private-key-filename": "smtp_ssl_private_key_filename",
}
CLI_ONLY_FLAGS = (
    "-s",
    "--save",
    "--stop-after-init",
    "--test-enable",
    "--i18n-overwrite",
    "--skip-auto-install",
)
SECRET_OPTIONS = ("admin_passwd", "db_password", "smtp_password", "proxy_access_token")
SECRET_KEY_PATTERN = re.compile(r"pass|secret|token|key", re.IGNORECASE)
ODOO_SCRIPT_NAMES = ("odoo", "odoo-bin", "openerp-server", "odoo.py", "odoo-server", "openerp-server.py")
SUBCOMMANDS = (
    "server",
    "shell",
    "scaffold",
    "start",
    "db",
    "neutralize",
    "populate",
    "upgrade_code",
    "obfuscate",
)

_FLAG_INDEX = {}
for _name, (_type, _default, _flags, _env) in OPTIONS.items():
    for _flag in _flags:
        _FLAG_INDEX[_flag] = _name


class OdooConfigError(Exception):
    """A config file or command line Odoo would refuse, or that cannot be resolved."""


class ConfigFile:
    """What a config file holds: raw [options] values, other sections, and what Odoo would object to."""

    def __init__(self, path):
        self.path = path
        self.options = {}
        self.option_lines = {}
        self.sections = {}
        self.duplicates = []
        self.errors = []
        self.notes = []


def parse_config_text(text, path="odoo.conf"):
    """Read config text as RawConfigParser does, keeping line numbers and what it would refuse."""
    result = ConfigFile(path)
    section = None
    key = None
    key_indent = 0
    seen = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            key = None if not stripped else key
            continue
        indent = len(line) - len(line.lstrip())
        if key is not None and indent > key_indent and section is not None:
            target = result.options if section == "options" else result.sections[section]
            target[key] = target[key] + "\n" + stripped
            continue
        header = re.match(r"^\[(?P<name>[^\]]+)\]", stripped)
        if header:
            section = header.group("name")
            key = None
            if section in seen.setdefault("__sections__", {}):
                result.errors.append(
                    "%s:%d: section [%s] appears twice (first at line %d); Odoo refuses to start"
                    % (path, number, section, seen["__sections__"][section])
                )
            seen["__sections__"][section] = number
            if section != "options":
                result.sections.setdefault(section, {})
            continue
        if section is None:
            result.errors.append(
                "%s:%d: %r comes before any [section] header; Odoo refuses to start"
                % (path, number, stripped)
            )
            continue
        match = re.match(r"^(?P<key>[^=:]+?)\s*[=:]\s*(?P<value>.*)$", stripped)
        if not match:
            result.errors.append(
                "%s:%d: %r has no '=' or ':'; Odoo refuses to start" % (path, number, stripped)
            )
            key = None
            continue
        key = match.group("key").strip().lower()
        key_indent = indent
        value = match.group("value").strip()
        section_key = (section, key)
        if section_key in seen:
            result.duplicates.append({"section": section, "key": key, "lines": [seen[section_key], number]})
            result.errors.append(
                "%s:%d: %s is set again in [%s] (first at line %d); Odoo on Python 3 (11+) refuses "
                "to start with a repeated key; older releases took the last one"
                % (path, number, key, section, seen[section_key])
            )
        seen[section_key] = number
        if section == "options":
            result.options[key] = value
            result.option_lines[key] = number
            if re.search(r"\s[;#]", value):
                result.notes.append(
                    "%s:%d: %s = %r: Odoo does not strip inline comments, the text after ';' or '#' is part "
                    "of the value" % (path, number, key, redact_option(key, value))
                )
        else:
            result.sections[section][key] = value
    if "DEFAULT" in result.sections:
        for default_key, default_value in result.sections.pop("DEFAULT").items():
            result.options.setdefault(default_key, default_value)
    return result


def split_interpreter(argv):
    """Split a process's argv into (interpreter or None, script, arguments)."""
    if not argv:
        raise OdooConfigError("empty command line")
    first = posixpath.basename(argv[0])
    if re.match(r"^python[0-9.]*$", first):
        index = 1
        while index < len(argv) and argv[index].startswith("-") and argv[index] != "-m":
            index += 2 if argv[index] in ("-W", "-X") else 1
        if index < len(argv) and argv[index] == "-m":
            return argv[0], "-m " + argv[index + 1], list(argv[index + 2 :])
        if index >= len(argv):
            raise OdooConfigError("%s runs no script" % argv[0])
        return argv[0], argv[index], list(argv[index + 1 :])
    return None, argv[0], list(argv[1:])


def is_odoo_command(argv):
    """True when argv starts Odoo (odoo, odoo-bin, openerp-server, directly or through python)."""
    try:
        _interpreter, script, _arguments = split_interpreter(argv)
    except OdooConfigError:
        return False
    if script.startswith("-m "):
        return script[3:] in ("odoo", "odoo.cli", "openerp")
    return posixpath.basename(script) in ODOO_SCRIPT_NAMES


def parse_command_line(arguments):
    """Parse Odoo's command-line arguments; return (options as raw strings, subcommand, notes)."""
    options = {}
    notes = []
    subcommand = None
    args = list(arguments)
    if args and not args[0].startswith("-"):
        subcommand = args.pop(0)
        if subcommand not in SUBCOMMANDS:
            notes.append("unknown subcommand %r" % subcommand)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        flag, attached = arg, None
        if arg.startswith("--") and "=" in arg:
            flag, attached = arg.split("=", 1)
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            flag, attached = arg[:2], arg[2:]
        name = _FLAG_INDEX.get(flag)
        if name is None and flag in CLI_ONLY_WITH_VALUE:
            if attached is None:
                index += 1
            continue
        if name is None:
            if flag in CLI_ONLY_FLAGS:
                continue
            notes.append("argument %r is not an option this resolver knows; it is ignored" % arg)
            continue
        option_type = OPTIONS[name][0]
        if option_type in ("flag", "noflag"):
            options[name] = "True" if option_type == "flag" else "False"
            continue
        if attached is None:
            if index >= len(args):
                raise OdooConfigError("option %s needs a value" % flag)
            attached = args[index]
            index += 1
        if name == "log_handler" and name in options:
            attached = options[name] + "," + attached
        options[name] = attached
    return options, subcommand, notes


def parse_value(name, raw, origin="config file"):
    """Convert one raw value as Odoo would. Returns (value, note or None); value UNSET means skipped."""
    if raw == "None":
        return None, None
    spec = OPTIONS.get(name)
    if spec is None:
        return raw, None
    option_type = spec[0]
    if option_type in ("flag", "noflag"):
        lowered = raw.strip().lower()
        if lowered in ("1", "yes", "true", "on"):
            return True, None
        if lowered in ("0", "no", "false", "off"):
            return False, None
        raise OdooConfigError("%s in the %s: invalid boolean value %r" % (name, origin, raw))
    if raw in ("False", "false"):
        return UNSET, "%s = %s in the %s is not a boolean option: Odoo treats it as unset" % (
            name,
            raw,
            origin,
        )
    if option_type == "int":
        try:
            return int(raw), None
        except ValueError:
            raise OdooConfigError("%s in the %s: %r is not an integer" % (name, origin, raw))
    if option_type == "float":
        try:
            return float(raw), None
        except ValueError:
            raise OdooConfigError("%s in the %s: %r is not a number" % (name, origin, raw))
    if option_type in ("comma", "addons_path"):
        return [part.strip() for part in raw.split(",") if part.strip()], None
    return raw, None


class _Unset:
    def __repr__(self):
        return "UNSET"


UNSET = _Unset()


def normalize_path(path, home, cwd, environ=None):
    """Odoo's _normalize without the disk: expand $VARS and ~, make absolute from the process's cwd."""
    if not path:
        return ""
    environ = environ or {}
    expanded = re.sub(
        r"\$(\w+)|\$\{(\w+)\}",
        lambda match: environ.get(match.group(1) or match.group(2), match.group(0)),
        path.strip(),
    )
    if expanded == "~" or expanded.startswith("~/"):
        expanded = home + expanded[1:]
    if not posixpath.isabs(expanded):
        expanded = posixpath.join(cwd or "/", expanded)
    return posixpath.normpath(expanded)


def default_data_dir(home, home_exists, environ=None):
    """appdirs.user_data_dir('Odoo') when the user's home exists, else /var/lib/Odoo (Odoo 19, Linux)."""
    environ = environ or {}
    if not home_exists:
        return "/var/lib/Odoo"
    base = environ.get("XDG_DATA_HOME") or posixpath.join(home, ".local", "share")
    return posixpath.join(base, "Odoo")


def choose_config_file(cli_options, environ, home, existing_files):
    """Which config file Odoo reads, and why: -c, then ODOO_RC/OPENERP_SERVER, then ~/.odoorc."""
    if "config" in cli_options:
        return cli_options["config"], "command line (-c/--config)"
    for variable in ("ODOO_RC", "OPENERP_SERVER"):
        if environ.get(variable):
            return environ[variable], "environment (%s)" % variable
    for name in (".odoorc", ".openerp_serverrc"):
        candidate = posixpath.join(home, name)
        if candidate in existing_files:
            return candidate, "default (~/%s)" % name
    return None, "none: no -c/--config, no ODOO_RC and no ~/.odoorc"


def resolve_settings(cli_options, environ, config_file, home, cwd, home_exists, odoo_series=None):
    """Layer command line > environment > config file > defaults; return {name: {value, source}} and notes."""
    notes = list(config_file.notes) if config_file else []
    settings = {}
    read_odoo_env = _series_at_least(odoo_series, 19)
    file_options = dict(config_file.options) if config_file else {}
    if "without_demo" in file_options and "with_demo" not in file_options:
        file_options["with_demo"] = (
            "False" if file_options["without_demo"] not in ("False", "false", "") else "True"
        )
    for name, (option_type, default, _flags, env_name) in OPTIONS.items():
        value, source = UNSET, None
        if name in cli_options:
            value, note = parse_value(name, cli_options[name], "command line")
            source = "command line"
            _add(notes, note)
        if (
            value is UNSET
            and env_name
            and env_name in environ
            and (read_odoo_env or env_name.startswith("PG"))
        ):
            value, note = parse_value(name, environ[env_name], "environment (%s)" % env_name)
            source = "environment (%s)" % env_name
            _add(notes, note)
        if value is UNSET and name in file_options:
            value, note = parse_value(name, file_options[name], "config file")
            source = "config file %s:%d" % (config_file.path, config_file.option_lines.get(name, 0))
            _add(notes, note)
        if value is UNSET:
            value, source = default, "default"
            if isinstance(value, list):
                value = list(value)
        if option_type == "path" and isinstance(value, str) and value:
            value = normalize_path(value, home, cwd, environ)
        if option_type == "addons_path" and isinstance(value, list):
            value = [normalize_path(item, home, cwd, environ) for item in value]
        settings[name] = {"value": value, "source": source}
    if settings["data_dir"]["value"] in (None, ""):
        settings["data_dir"] = {
            "value": default_data_dir(home, home_exists, environ),
            "source": "default (the service user's home %s%s)" % (home, "" if home_exists else ", missing"),
        }
    unknown = sorted(set(file_options) - set(OPTIONS) - {"without_demo"})
    return settings, notes, unknown


def _series_at_least(series, major):
    if not series:
        return True
    try:
        return int(str(series).split(".", maxsplit=1)[0].replace("saas~", "")) >= major
    except ValueError:
        return True


def _add(notes, note):
    if note:
        notes.append(note)


def redact_option(name, value):
    """The value to show for an option: secrets become a statement that they are set."""
    if name in SECRET_OPTIONS or SECRET_KEY_PATTERN.search(name or ""):
        return "<set>" if value not in (None, "", False, UNSET) else "<unset>"
    return value


def describe_secret(name, setting):
    """Where a secret option comes from and its form, never its value."""
    value = setting["value"]
    present = value not in (None, "", False)
    described = {"present": present, "source": setting["source"]}
    if name == "admin_passwd" and present:
        described["hashed"] = str(value).startswith("$pbkdf2")
        described["is_default"] = value == "admin" and setting["source"] == "default"
    return described


def redact_argv(argv):
    """A command line with the values of secret options masked."""
    secret_flags = set()
    for name in SECRET_OPTIONS:
        secret_flags.update(OPTIONS[name][2])
    masked = []
    hide_next = False
    for arg in argv:
        if hide_next:
            masked.append("<redacted>")
            hide_next = False
            continue
        flag = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if flag in secret_flags:
            if arg == flag:
                hide_next = True
                masked.append(arg)
            else:
                masked.append(flag + ("=" if arg.startswith("--") else "") + "<redacted>")
            continue
        masked.append(arg)
    return masked


def dbfilter_matches(dbfilter, database, host=""):
    """Whether Odoo's dbfilter lets a request reach database; %h/%d need the request host."""
    if not dbfilter:
        return True
    domain = host.split(":")[0]
    subdomain = domain[4:] if domain.startswith("www.") else domain
    subdomain = subdomain.split(".")[0] if subdomain else ""
    pattern = dbfilter.replace("%h", re.escape(domain)).replace("%d", re.escape(subdomain))
    return re.match(pattern, database) is not None


def resolve_environment_assignments(assignments):
    """systemd Environment= entries ('A=1 B=2' lines already split) into a dict, last one wins."""
    environ = {}
    for assignment in assignments:
        if "=" in assignment:
            key, value = assignment.split("=", 1)
            environ[key] = value
    return environ


def environment_for_report(environ):
    """Environment names Odoo or libpq read, values masked when secret."""
    interesting = {}
    known = set(spec[3] for spec in OPTIONS.values() if spec[3]) | {"OPENERP_SERVER", "XDG_DATA_HOME", "HOME"}
    for key in sorted(environ):
        if key in known or key.startswith("ODOO_") or key.startswith("PG"):
            interesting[key] = "<set>" if SECRET_KEY_PATTERN.search(key) else environ[key]
    return interesting


def settings_for_report(settings):
    """Effective settings with secrets masked, for facts and reports."""
    return dict(
        (name, {"value": redact_option(name, item["value"]), "source": item["source"]})
        for name, item in sorted(settings.items())
    )


def redact_sections(sections):
    """Extra config sections ([queue_job], [fs_storage.x], ...) with secret-looking values masked."""
    return dict(
        (section, dict((key, redact_option(key, value)) for key, value in sorted(keys.items())))
        for section, keys in sorted(sections.items())
    )


def environ_home(environ, passwd_home):
    """HOME as the service sees it: systemd sets it from passwd for User= units."""
    return environ.get("HOME") or passwd_home or "/"
