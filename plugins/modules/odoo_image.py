#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_image
short_description: Build an Odoo instance's image from its profile, prove it holds no secret, push it
version_added: 0.1.0
description:
  - Runs on a Docker host (the C(docker) CLI). Writes a build context from a base Odoo image, the
    instance's custom addons (each verified against the checksum discovery recorded on the VM), their
    Python requirements and an C(odoo.conf) made for containers, builds it, scans every layer the build
    added for the given secret values, checks the size budget and pushes it.
  - The context is deterministic, so its SHA-256 (with the base image's id) names the image tag; an
    image already built from the same context is reused and the module reports C(changed=false).
  - C(odoo.conf) never holds a secret or the database endpoint; the containers get C(PGHOST),
    C(PGPORT), C(PGUSER) and C(PGPASSFILE) (a mounted secret file) at run time, and C(data_dir) is the
    volume C(/var/lib/odoo).
  - Python requirements are installed in a throwaway stage with the optional CA bundle, so neither the
    bundle nor pip's caches reach the final image.
author:
  - sysgenpro platform engineering (@sysgenpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Verifies the addons and computes the tag; reports whether a build or push would happen.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  name:
    description: Repository of the image, with the registry (C(registry.example.com/odoo/erp1)).
    type: str
    required: true
  tag:
    description: Tag to give the image. Defaults to C(<series>-<first 12 hex of the context digest>).
    type: str
  series:
    description: Odoo series of the instance (the tag's prefix).
    type: str
    required: true
  base_image:
    description: The Odoo image to build on (the official one, an internal one, the lab's).
    type: str
    required: true
  user:
    description: C(uid:gid) the container runs as; must not be root and must own the filestore volume.
    type: str
    default: "100:101"
  addons:
    description: Custom addons to ship, each a directory on this host and the checksum discovery recorded.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Technical name (the directory name in the image).
        type: str
        required: true
      path:
        description: Directory holding the addon on this host; defaults to O(addons_dir)/O(addons[].name).
        type: path
      checksum:
        description: C(sha256:...) tree checksum from discovery (C(facts.yml)).
        type: str
        required: true
  addons_dir:
    description: Directory on this host holding the addons by name, for O(addons) given without a path.
    type: path
  python_requirements:
    description: Pinned pip requirements the addons need beyond the base image (C(humanize==4.12.3)).
    type: list
    elements: str
    default: []
  pip_ca_bundle:
    description: CA bundle pip trusts during the build (a proxy's CA); used in a throwaway stage only.
    type: path
  config:
    description:
      - Options of C(odoo.conf) (section C([options])). Secret options and the database endpoint are refused.
    type: dict
    default: {}
  labels:
    description: Extra labels; the module adds OCI labels and its own (source host, profile, addons, context).
    type: dict
    default: {}
  source_host:
    description: The legacy host the instance comes from (a label).
    type: str
    required: true
  profile_checksum:
    description: SHA-256 of the profile (C(facts.yml)) the image was built from (a label).
    type: str
    required: true
  collection_version:
    description: Version of this collection (a label).
    type: str
    required: true
  secrets:
    description: Secret values that must not appear in any layer the build added nor in the image config.
    type: list
    elements: str
    default: []
  installed_modules:
    description:
      - The Odoo modules installed in each database the image will serve (database name to module names).
      - After the build, the image is asked where each module is and whether it can import every Python
        dependency the module's manifest declares (C(external_dependencies)); a module it does not have or
        cannot run fails the task before any push, naming the module, the database and the package.
      - Empty skips the check.
    type: dict
    default: {}
  size_budget_mb:
    description: Largest acceptable image size in MiB (the whole image); C(0) disables the check.
    type: int
    default: 0
  push:
    description: Push the image to its registry.
    type: bool
    default: true
  work_dir:
    description: Where build contexts are written (one subdirectory per tag, kept for audit).
    type: path
    default: /var/tmp/odoo-migration-images
"""

EXAMPLES = r"""
- name: Build and push erp1's image
  sysgenpro.odoo_migration.odoo_image:
    name: registry.example.com/odoo/erp1
    series: "19.0"
    base_image: odoo:19.0
    addons:
      - name: acme_sale
        path: /var/tmp/odoo-migration/erp1/addons/acme_sale
        checksum: sha256:5f86a42d232a837c80bad8795ea387b37081d10dda2a0d880cd2fdd38cc27041
    python_requirements: [humanize==4.12.3]
    config:
      proxy_mode: true
      workers: 4
      list_db: false
      dbfilter: ^erp1$
    source_host: erp1.example.com
    profile_checksum: "{{ lookup('ansible.builtin.file', 'migration-state/erp1/facts.yml')
      | hash('sha256') }}"
    collection_version: 0.1.0
    secrets: ["{{ erp1_db_password }}"]
    size_budget_mb: 2048
  delegate_to: docker-host-1
"""

RETURN = r"""
image:
  description: The image reference built (C(name:tag)).
  returned: success
  type: str
image_id:
  description: Local image id.
  returned: success
  type: str
digest:
  description: Registry digest (C(name@sha256:...)) after the push; empty without a push.
  returned: success
  type: str
context_digest:
  description: SHA-256 of the build context and the base image's id.
  returned: success
  type: str
built:
  description: Whether this run built the image.
  returned: success
  type: bool
pushed:
  description: Whether this run pushed the image.
  returned: success
  type: bool
size_bytes:
  description: Size of the image.
  returned: success
  type: int
added_bytes:
  description: Bytes the build added on top of the base image.
  returned: success
  type: int
secret_scan:
  description:
    - Layers and files scanned in the saved image and what was found (paths only, never values).
    - C(reused) is true when the image was not built in this run and was scanned clean before, by image ID,
      for the same secrets (recorded under O(work_dir)); it is then not saved and scanned again.
  returned: success
  type: dict
labels:
  description: The labels the image carries.
  returned: success
  type: dict
modules_checked:
  description: How many distinct modules of O(installed_modules) the image was checked to have and to run.
  returned: success
  type: int
  sample: 94
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import image as _image


class Docker(object):
    def __init__(self, module):
        self.module = module
        self.binary = module.get_bin_path("docker", required=True)

    def run(self, args, what, check=True, **kwargs):
        rc, out, err = self.module.run_command([self.binary] + args, **kwargs)
        if check and rc != 0:
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (what, rc, (err or out).strip()[-1500:]))
        return rc, out, err

    def inspect(self, reference):
        rc, out, _err = self.run(["image", "inspect", reference], "inspect", check=False)
        return json.loads(out)[0] if rc == 0 else None


def check_installed_modules(module, docker, reference, modules_by_database):
    """Fail unless the image has every installed module and can import each one's Python dependencies."""
    names = sorted({name for names in modules_by_database.values() for name in names or []})
    if not names:
        return 0
    _rc, out, _err = docker.run(
        ["run", "--rm", "--network", "none", "--entrypoint", "python3", reference, "-c", _image.MODULE_PROBE]
        + ["/etc/odoo/odoo.conf"]
        + names,
        "asking image %s which modules it can run" % reference,
    )
    problems = _image.module_problems(json.loads(out.strip().splitlines()[-1]), modules_by_database)
    if problems:
        module.fail_json(
            msg="image %s cannot serve what the VM serves: %s. Use a base image that has these modules and "
            "packages (on Debian python3-<package>, such as python3-ldap for auth_ldap), or add the "
            "missing addons, then run containerize again" % (reference, "; ".join(problems))
        )
    return len(names)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            tag=dict(type="str"),
            series=dict(type="str", required=True),
            base_image=dict(type="str", required=True),
            user=dict(type="str", default="100:101"),
            addons=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    path=dict(type="path"),
                    checksum=dict(type="str", required=True),
                ),
            ),
            addons_dir=dict(type="path"),
            python_requirements=dict(type="list", elements="str", default=[]),
            pip_ca_bundle=dict(type="path"),
            config=dict(type="dict", default={}),
            labels=dict(type="dict", default={}),
            source_host=dict(type="str", required=True),
            profile_checksum=dict(type="str", required=True),
            collection_version=dict(type="str", required=True),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
            installed_modules=dict(type="dict", default={}),
            size_budget_mb=dict(type="int", default=0),
            push=dict(type="bool", default=True),
            work_dir=dict(type="path", default="/var/tmp/odoo-migration-images"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    uid, _sep, gid = params["user"].partition(":")
    if not (uid.isdigit() and gid.isdigit()) or uid == "0":
        module.fail_json(
            msg="user must be numeric uid:gid and not root, got %r (the official image uses 100:101)"
            % params["user"]
        )
    for addon in params["addons"]:
        if not addon["path"]:
            if not params["addons_dir"]:
                module.fail_json(msg="addon %s has no path and addons_dir is not set" % addon["name"])
            addon["path"] = os.path.join(params["addons_dir"], addon["name"])
    docker = Docker(module)
    base = docker.inspect(params["base_image"])
    if base is None:
        module.fail_json(
            msg="base image %s is not on this Docker host: build or pull it first" % params["base_image"]
        )

    labels = dict(params["labels"])
    labels.update(
        {
            "org.opencontainers.image.title": "Odoo %s from %s" % (params["series"], params["source_host"]),
            "org.opencontainers.image.version": params["series"],
            "org.opencontainers.image.base.name": params["base_image"],
            "org.opencontainers.image.revision": params["profile_checksum"],
            _image.LABEL_PREFIX + "source-host": params["source_host"],
            _image.LABEL_PREFIX + "profile-sha256": params["profile_checksum"],
            _image.LABEL_PREFIX + "collection-version": params["collection_version"],
            _image.LABEL_PREFIX + "addons": ",".join(
                "%s=%s" % (addon["name"], addon["checksum"])
                for addon in sorted(params["addons"], key=lambda a: a["name"])
            ),
        }
    )
    try:
        _image.verify_addons(params["addons"])
        config_text = _image.render_config(params["config"])
    except _image.ImageError as error:
        module.fail_json(msg=str(error))
    if params["pip_ca_bundle"] and not os.path.isfile(params["pip_ca_bundle"]):
        module.fail_json(msg="pip_ca_bundle %s does not exist on this host" % params["pip_ca_bundle"])

    staging = tempfile.mkdtemp(prefix="odoo-image-")
    try:
        context = os.path.join(staging, "context")
        _image.write_context(
            context,
            _image.dockerfile(
                params["base_image"],
                params["user"],
                labels,
                params["python_requirements"],
                bool(params["pip_ca_bundle"]),
            ),
            config_text,
            params["addons"],
            params["python_requirements"],
            params["pip_ca_bundle"],
        )
        digest = _image.context_digest(context, base["Id"])
        tag = params["tag"] or "%s-%s" % (params["series"], digest[:12])
        reference = "%s:%s" % (params["name"], tag)
        existing = docker.inspect(reference)
        built = (
            existing is None
            or (existing["Config"].get("Labels") or {}).get(_image.LABEL_PREFIX + "context") != digest
        )
        labels[_image.LABEL_PREFIX + "context"] = digest
        if module.check_mode:
            published = any(
                entry.startswith(params["name"] + "@") for entry in (existing or {}).get("RepoDigests") or []
            )
            would_push = params["push"] and (built or not published)
            module.exit_json(
                changed=built or would_push,
                image=reference,
                built=built,
                context_digest=digest,
                labels=labels,
            )
        if built:
            kept = os.path.join(
                params["work_dir"], "%s-%s" % (params["name"].replace("/", "_").replace(":", "_"), tag)
            )
            if os.path.isdir(kept):
                shutil.rmtree(kept)
            shutil.copytree(context, kept, ignore=shutil.ignore_patterns("pip-ca-bundle.crt"))
            docker.run(
                [
                    "build",
                    "--pull=false",
                    "--label",
                    "%s=%s" % (_image.LABEL_PREFIX + "context", digest),
                    "-t",
                    reference,
                    context,
                ],
                "docker build of %s" % reference,
                environ_update={"DOCKER_BUILDKIT": "0"},
            )
        image = docker.inspect(reference)
        # An image scanned clean before for the same secrets is the same bytes: its record stands.
        record = _image.ScanRecord(params["work_dir"], image["Id"], params["secrets"])
        reused = record.clean_scan() if not built else None
        if reused is not None:
            layers, files, findings = reused
        else:
            archive = os.path.join(staging, "image.tar")
            docker.run(["image", "save", "-o", archive, reference], "docker image save")
            layers, files, findings = _image.scan_saved_image(
                archive, len(base["RootFS"]["Layers"]), params["secrets"]
            )
            os.remove(archive)
            if not findings:
                record.keep(layers, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    scan = dict(
        layers_scanned=layers,
        files_scanned=files,
        secrets_checked=len([s for s in params["secrets"] if s]),
        findings=findings,
        reused=reused is not None,
    )
    result = dict(
        image=reference,
        image_id=image["Id"],
        context_digest=digest,
        built=built,
        size_bytes=image["Size"],
        added_bytes=image["Size"] - base["Size"],
        secret_scan=scan,
        labels=image["Config"].get("Labels") or {},
    )
    if findings:
        docker.run(["image", "rm", reference], "removing the image", check=False)
        module.fail_json(
            msg="secret values found in the image %s; it was removed: %s" % (reference, "; ".join(findings)),
            **result,
        )
    result["modules_checked"] = check_installed_modules(
        module, docker, reference, params["installed_modules"]
    )
    budget = params["size_budget_mb"] * 1024 * 1024
    if budget and image["Size"] > budget:
        module.fail_json(
            msg="image %s is %.0f MiB, over its budget of %d MiB (the build added %.0f MiB): "
            "trim the addons or requirements, or raise size_budget_mb deliberately"
            % (
                reference,
                image["Size"] / 1048576.0,
                params["size_budget_mb"],
                result["added_bytes"] / 1048576.0,
            ),
            **result,
        )
    pushed = False
    repo_digest = ""
    if params["push"]:
        before = set(image.get("RepoDigests") or [])
        docker.run(["push", reference], "docker push of %s" % reference)
        after = docker.inspect(reference)
        digests = [
            entry for entry in after.get("RepoDigests") or [] if entry.startswith(params["name"] + "@")
        ]
        repo_digest = digests[0] if digests else ""
        pushed = not set(digests) <= before
    result.update(digest=repo_digest, pushed=pushed)
    module.exit_json(changed=built or pushed, **result)


if __name__ == "__main__":
    main()
