# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Programs run with the Odoo service's own interpreter, as the service user.

Why its interpreter: it is the one that imports this Odoo and holds psycopg2, and the
service user is the one PostgreSQL's peer authentication and the filestore's owner
accept. Parameters (the database password among them) travel on stdin as JSON, never
on the command line; results come back as one JSON document on stdout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Where the interpreter finds Odoo, which release it is, and which packages it has.
INTERPRETER_PROBE = r"""
import json, os, re, sys
params = json.load(sys.stdin)
script_dir = params.get("script_dir")
if script_dir:
    sys.path.insert(0, script_dir)
import importlib.util
result = {"python_version": sys.version.split()[0], "executable": sys.executable,
          "prefix": sys.prefix, "base_prefix": getattr(sys, "base_prefix", sys.prefix)}
spec = importlib.util.find_spec("odoo") or importlib.util.find_spec("openerp")
# Odoo 19's odoo is a namespace package: look for the directory that holds release.py.
locations = list(spec.submodule_search_locations or []) if spec else []
result["odoo_package"] = next(
    (path for path in locations if os.path.exists(os.path.join(path, "release.py"))), None)
release = {}
if result["odoo_package"]:
    path = os.path.join(result["odoo_package"], "release.py")
    text = open(path).read() if os.path.exists(path) else ""
    match = re.search(r"version_info\s*=\s*\(([^)]*)\)", text)
    if match:
        parts = [part.strip().strip("'\"") for part in match.group(1).split(",")]
        release["version_info"] = parts
    match = re.search(r"^serie\w*\s*=\s*(?:serie\s*=\s*)?(?:major_version\s*=\s*)?'([^']+)'", text, re.M)
    if match:
        release["series_literal"] = match.group(1)
result["release"] = release
packages = []
try:
    from importlib import metadata
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        location = str(dist.locate_file(""))
        packages.append({"name": name, "version": dist.version, "location": location,
                         "in_virtualenv": result["prefix"] != result["base_prefix"]
                         and location.startswith(result["prefix"])})
except Exception as error:
    result["packages_error"] = str(error)
result["packages"] = sorted(packages, key=lambda item: item["name"].lower())
print(json.dumps(result))
"""

# Everything a move needs from each database, read in one read-only transaction per database.
DATABASE_PROBE = r"""
import json, os, sys
params = json.load(sys.stdin)
try:
    import psycopg2
except ImportError:
    print(json.dumps({"error": "psycopg2 is not importable by %s" % sys.executable}))
    sys.exit(0)

KEYS = ["web.base.url", "web.base.url.freeze", "report.url", "database.uuid", "database.secret",
        "database.create_date", "database.enterprise_code", "database.expiration_date",
        "ir_attachment.location", "mail.catchall.domain", "mail.default.from", "mail.bounce.alias"]
SECRET_KEYS = ("database.secret", "database.enterprise_code")

def connect(dbname):
    kwargs = dict(dbname=dbname, connect_timeout=10, application_name="odoo_migration_discovery")
    for key in ("host", "port", "user", "password", "sslmode"):
        if params.get(key) not in (None, ""):
            kwargs[key] = params[key]
    return psycopg2.connect(**kwargs)

def rows(cursor, query, args=None):
    cursor.execute(query, args)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]

def exists(cursor, table):
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return cursor.fetchone()[0]

def columns(cursor, table):
    cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))
    return set(row[0] for row in cursor.fetchall())

def describe(dbname):
    connection = connect(dbname)
    connection.set_session(readonly=True, isolation_level="REPEATABLE READ")
    try:
        cursor = connection.cursor()
        cursor.execute("SET LOCAL statement_timeout = '120s'")
        if not exists(cursor, "ir_module_module"):
            return None
        facts = rows(cursor, "SELECT pg_database_size(current_database()) AS size_bytes, "
                     "pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype, "
                     "pg_get_userbyid(datdba) AS owner FROM pg_database "
                     "WHERE datname = current_database()")[0]
        facts["name"] = dbname
        facts["modules"] = rows(cursor, "SELECT name, state, latest_version FROM ir_module_module "
                                "WHERE state NOT IN ('uninstalled', 'uninstallable') ORDER BY name")
        params_found = dict((row["key"], row["value"]) for row in rows(
            cursor, "SELECT key, value FROM ir_config_parameter WHERE key = ANY(%s)", (KEYS,)))
        facts["parameters"] = dict(
            (key, {"present": True} if key in SECRET_KEYS else params_found[key]) for key in params_found)
        facts["extensions"] = rows(cursor, "SELECT extname AS name, extversion AS version FROM pg_extension "
                                   "ORDER BY 1")
        attachments = rows(cursor, "SELECT count(*) AS total, "
                           "count(*) FILTER (WHERE store_fname IS NOT NULL) AS in_filestore, "
                           "count(*) FILTER (WHERE store_fname IS NULL AND db_datas IS NOT NULL) "
                           "AS in_database, "
                           "count(*) FILTER (WHERE type = 'url') AS urls, "
                           "count(DISTINCT store_fname) AS distinct_files, "
                           "coalesce(sum(file_size) FILTER (WHERE store_fname IS NOT NULL), 0) AS bytes "
                           "FROM ir_attachment")[0]
        filestore = os.path.join(params["filestore_root"], dbname) if params.get("filestore_root") else None
        missing = []
        if filestore:
            cursor.execute("SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL")
            for (store_fname,) in cursor:
                if not os.path.isfile(os.path.join(filestore, store_fname)):
                    missing.append(store_fname)
        attachments["missing_files"] = len(missing)
        attachments["missing_examples"] = sorted(missing)[:20]
        facts["attachments"] = attachments
        cron_columns = columns(cursor, "ir_cron")
        wanted = [name for name in ("lastcall", "failure_count") if name in cron_columns]
        facts["crons"] = rows(cursor, "SELECT id, cron_name AS name, active, interval_number, interval_type, "
                              "nextcall::text AS nextcall" + "".join(", %s" % name for name in wanted)
                              + " FROM ir_cron ORDER BY id")
        for cron in facts["crons"]:
            if "lastcall" in cron and cron["lastcall"] is not None:
                cron["lastcall"] = str(cron["lastcall"])
            if isinstance(cron["name"], dict):
                cron["name"] = cron["name"].get("en_US") or next(iter(cron["name"].values()), None)
        facts["users"] = rows(cursor, "SELECT "
                              "count(*) FILTER (WHERE active AND NOT share) AS internal_active, "
                              "count(*) FILTER (WHERE active AND share) AS portal_active FROM res_users")[0]
        if exists(cursor, "ir_mail_server"):
            facts["mail_servers"] = rows(cursor, "SELECT name, smtp_host, smtp_port, smtp_encryption, active "
                                         "FROM ir_mail_server ORDER BY sequence, id")
        if exists(cursor, "website"):
            facts["websites"] = rows(cursor, "SELECT name, domain FROM website ORDER BY id")
        if exists(cursor, "queue_job"):
            facts["queue_jobs"] = rows(cursor, "SELECT state, count(*) AS count "
                                       "FROM queue_job GROUP BY state")
        return facts
    finally:
        connection.rollback()
        connection.close()

result = {"databases": [], "skipped": []}
try:
    listing = connect(params.get("maintenance_db") or "postgres")
except psycopg2.Error as error:
    try:
        listing = connect("template1")
    except psycopg2.Error:
        print(json.dumps({"error": str(error).strip()}))
        sys.exit(0)
cursor = listing.cursor()
cursor.execute("SELECT current_setting('server_version') , current_setting('port'), current_user")
result["server_version"], result["server_port"], result["connected_as"] = cursor.fetchone()
cursor.execute("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
               "AND has_database_privilege(datname, 'CONNECT') ORDER BY 1")
names = [row[0] for row in cursor.fetchall()]
listing.close()
wanted = params.get("databases") or names
for name in wanted:
    if name not in names:
        result["skipped"].append({"name": name, "reason": "not found or no CONNECT privilege"})
        continue
    try:
        facts = describe(name)
    except psycopg2.Error as error:
        result["skipped"].append({"name": name, "reason": str(error).strip()})
        continue
    if facts is None:
        if params.get("databases"):
            result["skipped"].append({"name": name, "reason": "not an Odoo database (no ir_module_module)"})
        continue
    result["databases"].append(facts)
print(json.dumps(result, default=str))
"""
