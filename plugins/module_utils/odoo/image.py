# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An Odoo instance's container image: build context, odoo.conf for containers, secret scan.

The context is deterministic (sorted files, no timestamps in it), so its SHA-256 names the
image: the same profile and addons give the same tag and nothing is rebuilt.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import io
import json
import os
import shutil
import tarfile

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.discovery import tree_checksum

ADDONS_DIR = "/mnt/extra-addons"
EXTRA_PYTHON_DIR = "/opt/odoo-extra-python"
LABEL_PREFIX = "org.sysgenpro.odoo-migration."
# Options that hold secrets: they come from files at run time, never from the image.
SECRET_OPTIONS = ("admin_passwd", "db_password", "smtp_password", "proxy_access_token")
# Options that belong to the deployment (the container's environment), not to the image.
DEPLOYMENT_OPTIONS = ("db_host", "db_port", "db_user", "data_dir", "logfile", "pidfile")


class ImageError(Exception):
    pass


# Runs inside the built image (python3 -c, argv: config file, module names): where each module is and
# which of its manifest's Python dependencies the image cannot import. Standard library only.
MODULE_PROBE = """
import ast, configparser, importlib, importlib.metadata, importlib.util, json, os, sys
parser = configparser.ConfigParser(interpolation=None)
parser.read(sys.argv[1])
paths = [p.strip() for p in parser.get("options", "addons_path", fallback="").split(",") if p.strip()]
spec = importlib.util.find_spec("odoo")
for location in (spec.submodule_search_locations or []) if spec else []:
    paths.append(os.path.join(location, "addons"))
absent, missing = [], {}
for name in sys.argv[2:]:
    manifest = next((os.path.join(p, name, "__manifest__.py") for p in paths
                     if os.path.isfile(os.path.join(p, name, "__manifest__.py"))), None)
    if manifest is None:
        absent.append(name)
        continue
    with open(manifest) as handle:
        wanted = (ast.literal_eval(handle.read()).get("external_dependencies") or {}).get("python") or []
    for dependency in wanted:
        try:
            importlib.metadata.version(dependency)
        except importlib.metadata.PackageNotFoundError:
            try:
                importlib.import_module(dependency)
            except ImportError:
                missing.setdefault(name, []).append(dependency)
print(json.dumps({"absent": absent, "missing": missing}))
"""


def module_problems(report, modules_by_database):
    """Sentences for what the image cannot run, from MODULE_PROBE's report; [] when it runs everything."""
    problems = []
    for database in sorted(modules_by_database):
        installed = set(modules_by_database[database])
        absent = sorted(installed & set(report.get("absent", [])))
        if absent:
            problems.append(
                "database %s has modules installed that the image does not have: %s"
                % (database, ", ".join(absent))
            )
        for module_name in sorted(installed & set(report.get("missing", {}))):
            problems.append(
                "module %s (installed in database %s) needs the Python package(s) %s, which the image cannot "
                "import" % (module_name, database, ", ".join(report["missing"][module_name]))
            )
    return problems


def render_value(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def render_config(options):
    """odoo.conf for a container: data_dir fixed to the volume, secrets and endpoints refused."""
    refused = sorted(set(options) & set(SECRET_OPTIONS))
    if refused:
        raise ImageError(
            "config holds secret option(s) %s: they must not be baked into an image layer. Drop them from "
            "config; the containers read the database password from a secret file (PGPASSFILE) and list_db "
            "stays off, so no master password is needed" % ", ".join(refused)
        )
    placed = sorted(set(options) & set(DEPLOYMENT_OPTIONS))
    if placed:
        raise ImageError(
            "config sets %s, which the deployment decides (data_dir is the volume /var/lib/odoo; "
            "the database endpoint comes from PGHOST/PGPORT/PGUSER at run time). Remove them from config"
            % ", ".join(placed)
        )
    lines = ["[options]", "data_dir = /var/lib/odoo"]
    for key in sorted(options):
        if options[key] is None:
            continue
        lines.append("%s = %s" % (key, render_value(options[key])))
    return "\n".join(lines) + "\n"


def verify_addons(addons):
    """Every addon directory must hash to the checksum discovery recorded on the VM."""
    problems = []
    for addon in addons:
        path = addon["path"]
        if not os.path.isfile(os.path.join(path, "__manifest__.py")):
            problems.append("%s: %s holds no __manifest__.py" % (addon["name"], path))
            continue
        actual = tree_checksum(path)
        if actual != addon["checksum"]:
            problems.append(
                "%s: %s hashes to %s, discovery recorded %s"
                % (addon["name"], path, actual, addon["checksum"])
            )
    if problems:
        raise ImageError(
            "custom addons differ from the discovered ones (%s). Re-run discovery if the VM changed on "
            "purpose, otherwise fetch the addons again" % "; ".join(problems)
        )


def dockerfile(base_image, user, labels, python_requirements, has_ca_bundle, expose=(8069, 8072)):
    lines = ["# Generated by sysgenpro.odoo_migration.odoo_image; do not edit."]
    if python_requirements:
        # pip runs in a throwaway stage: the CA bundle it may need never reaches the final image.
        lines += ["FROM %s AS python-deps" % base_image, "USER root"]
        if has_ca_bundle:
            lines += ["COPY pip-ca-bundle.crt /tmp/pip-ca-bundle.crt", "ENV PIP_CERT=/tmp/pip-ca-bundle.crt"]
        lines += [
            "COPY requirements.txt /tmp/requirements.txt",
            "RUN python3 -m pip install --no-cache-dir --disable-pip-version-check --no-compile "
            "--target %s -r /tmp/requirements.txt" % EXTRA_PYTHON_DIR,
        ]
    lines += ["FROM %s" % base_image, "USER root"]
    if python_requirements:
        lines += [
            "COPY --from=python-deps %s %s" % (EXTRA_PYTHON_DIR, EXTRA_PYTHON_DIR),
            "ENV PYTHONPATH=%s" % EXTRA_PYTHON_DIR,
        ]
    uid, gid = user.split(":")
    lines += [
        "COPY addons/ %s/" % ADDONS_DIR,
        "COPY odoo.conf /etc/odoo/odoo.conf",
        # Root owns the code and the config; the Odoo user only reads them.
        "RUN chmod -R a+rX,go-w %s && chown 0:%s /etc/odoo/odoo.conf && chmod 0640 /etc/odoo/odoo.conf "
        "&& install -d -o %s -g %s -m 0750 /var/lib/odoo" % (ADDONS_DIR, gid, uid, gid),
    ]
    for key in sorted(labels):
        lines.append("LABEL %s=%s" % (key, json.dumps(str(labels[key]))))
    lines += [
        "HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=6 "
        "CMD curl -fsS -o /dev/null http://127.0.0.1:8069/web/health || exit 1",
        "EXPOSE %s" % " ".join(str(port) for port in expose),
        "USER %s" % user,
        "VOLUME /var/lib/odoo",
    ]
    return "\n".join(lines) + "\n"


def _copy_addon(source, destination):
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))


def write_context(directory, dockerfile_text, config_text, addons, python_requirements, ca_bundle):
    os.makedirs(os.path.join(directory, "addons"))
    for addon in addons:
        _copy_addon(addon["path"], os.path.join(directory, "addons", addon["name"]))
    with open(os.path.join(directory, "Dockerfile"), "w") as handle:
        handle.write(dockerfile_text)
    with open(os.path.join(directory, "odoo.conf"), "w") as handle:
        handle.write(config_text)
    if python_requirements:
        with open(os.path.join(directory, "requirements.txt"), "w") as handle:
            handle.write("\n".join(python_requirements) + "\n")
        if ca_bundle:
            shutil.copyfile(ca_bundle, os.path.join(directory, "pip-ca-bundle.crt"))


def context_digest(directory, base_image_id, exclude=("pip-ca-bundle.crt",)):
    """SHA-256 over every context file's path and content plus the base image's id."""
    digest = hashlib.sha256(base_image_id.encode("utf-8") + b"\0")
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            relative = os.path.relpath(full, directory)
            if relative in exclude:
                continue
            digest.update(relative.encode("utf-8") + b"\0")
            with open(full, "rb") as handle:
                digest.update(handle.read())
            digest.update(b"\0")
    return digest.hexdigest()


def _scan_bytes(data, needles):
    return [label for label, needle in needles if needle in data]


def scan_saved_image(archive_path, skip_layers, secrets):
    """Search the layers the build added (and the image config) of a `docker save` archive for secrets.

    Returns (layers_scanned, files_scanned, findings) where a finding names the layer file and path,
    never the secret.
    """
    needles = [
        ("secret #%d" % (index + 1), value.encode("utf-8")) for index, value in enumerate(secrets) if value
    ]
    findings = []
    layers_scanned = files_scanned = 0
    with tarfile.open(archive_path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))[0]
        config_bytes = archive.extractfile(manifest["Config"]).read()
        for label in _scan_bytes(config_bytes, needles):
            findings.append("image config (env, labels, history): %s" % label)
        for layer_name in manifest["Layers"][skip_layers:]:
            layers_scanned += 1
            layer_bytes = archive.extractfile(layer_name).read()
            with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as layer:
                for member in layer:
                    if not member.isfile():
                        continue
                    files_scanned += 1
                    content = layer.extractfile(member).read()
                    for label in _scan_bytes(content, needles):
                        findings.append("%s:/%s: %s" % (layer_name, member.name, label))
    return layers_scanned, files_scanned, findings


class ScanRecord:
    """The clean secret scan of one image ID for one set of secrets, kept under work_dir/scans.

    The record names the secrets only by a digest salted with the image ID, never their values."""

    def __init__(self, work_dir, image_id, secrets):
        self.path = os.path.join(work_dir, "scans", image_id.replace(":", "_") + ".json")
        material = "\0".join([image_id] + sorted(secret for secret in secrets if secret))
        self.fingerprint = hashlib.sha256(material.encode("utf-8")).hexdigest()

    def clean_scan(self):
        """(layers, files, []) of an earlier clean scan of this image for these secrets, else None."""
        try:
            with open(self.path) as handle:
                kept = json.load(handle)
        except (IOError, OSError, ValueError):
            return None
        if kept.get("fingerprint") != self.fingerprint:
            return None
        return kept["layers_scanned"], kept["files_scanned"], []

    def keep(self, layers, files):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        with open(self.path, "w") as handle:
            json.dump(dict(fingerprint=self.fingerprint, layers_scanned=layers, files_scanned=files), handle)
