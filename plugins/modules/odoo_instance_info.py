#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_instance_info
short_description: Discover everything a faithful move of an Odoo instance needs
version_added: 0.1.0
description:
  - Finds the Odoo services of the host (systemd units, or processes running C(odoo), C(odoo-bin),
    C(openerp-server)) and, for each, reports what a move must carry over.
  - Settings are resolved the way Odoo resolves them, command line over environment over config
    file over defaults, including the effective C(data_dir) (the packaged service keeps it under the
    service user's home).
  - Reports the version and install type (distribution package, source checkout with its git commit,
    pip, virtualenv), the interpreter and its Python packages, C(addons_path) in Odoo's search order
    with core and custom addons told apart, each custom addon's manifest and checksum, the filestore
    and sessions, the nginx site in front, and per database the installed modules, the system
    parameters that matter, attachment storage (with files missing on disk) and crons.
  - Runs the service's own interpreter as the service user to read the code and the databases, so it
    connects to PostgreSQL exactly as Odoo does. It changes nothing.
  - Secrets (C(admin_passwd), C(db_password), SMTP passwords, C(database.secret)) are never returned;
    the module reports that they exist and where they come from.
author:
  - sysgenpro platform engineering (@sysgenpro)
options:
  service:
    description:
      - Name of the systemd unit (or the process label) to describe. By default every Odoo service found.
    type: str
  databases:
    description:
      - Limit the per-database part to these databases. By default every Odoo database the service's
        database user can connect to.
    type: list
    elements: str
    default: []
  python_packages:
    description:
      - Include the full list of Python packages the interpreter sees.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only; check mode returns the same facts.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root (C(become) true) to read other users' processes and to run the probes as the service user.
  - The Odoo interpreter must be able to import C(psycopg2), which every Odoo installation needs anyway.
"""

EXAMPLES = r"""
- name: Discover the Odoo instance of a legacy VM
  sysgenpro.odoo_migration.odoo_instance_info:
  become: true
  register: discovered

- name: Show where the filestore is
  ansible.builtin.debug:
    msg: "{{ discovered.instances[0].data_dir.path }}"

- name: Describe one unit and one database only
  sysgenpro.odoo_migration.odoo_instance_info:
    service: odoo-erp.service
    databases: [globex]
    python_packages: false
  become: true
"""

RETURN = r"""
instances:
  description: One entry per Odoo service found.
  returned: success
  type: list
  elements: dict
  contains:
    service:
      description: The unit or process, its user and uid/gid, working directory and command line (secrets
        masked).
      type: dict
    odoo:
      description: C(series), C(version) and C(install) (type, package, git commit/branch/modified files,
        virtualenv).
      type: dict
    python:
      description: Interpreter, script, Python version, virtualenv, packages and those installed in the
        virtualenv.
      type: dict
    config:
      description: The config file read, why it was chosen, errors Odoo would refuse, duplicates, unknown
        options, notes.
      type: dict
    settings:
      description: Every known option with its effective value and where it comes from; secrets masked.
      type: dict
    secrets:
      description: For each secret, whether it is set and where; never the value.
      type: dict
    addons_paths:
      description: Addons directories in Odoo's search order, each with origin, kind (core or custom) and
        addon count.
      type: list
    custom_addons:
      description: Each custom addon's manifest facts, external dependencies (and which are missing) and tree
        checksum.
      type: list
    data_dir:
      description: Effective data_dir, where the value comes from, its owner and the sessions directory.
      type: dict
    database_server:
      description: How Odoo reaches PostgreSQL (host or socket, port, user) and the server version.
      type: dict
    databases:
      description: Per Odoo database, size, encoding, modules, parameters, attachments, crons, filestore and
        whether it is served.
      type: list
    nginx:
      description: The nginx sites that route to this Odoo (server names, listen, TLS, upstreams, websocket,
        timeouts, body size).
      type: dict
    concerns:
      description: Findings with a stable C(id), a C(severity) (blocker, warning, info), the C(subject),
        C(message) and C(fix).
      type: list
  sample:
    - service: {name: odoo.service, user: odoo, uid: 101}
      odoo: {series: "19.0", version: "19.0", install: {type: distribution package}}
      data_dir: {path: /var/lib/odoo/.local/share/Odoo}
concerns:
  description: The concerns of every instance, blockers first.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.config import OdooConfigError
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.discovery import (
    DiscoveryError,
    discover,
    sort_concerns,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str"),
            databases=dict(type="list", elements="str", default=[]),
            python_packages=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )

    def run(argv, data=None):
        # A tool the host lacks (rpm on Debian, git without a checkout) is an answer, not a failure.
        if not argv[0].startswith("/") and module.get_bin_path(argv[0]) is None:
            return 127, "", "%s: command not found" % argv[0]
        return module.run_command(argv, data=data, environ_update={"LC_ALL": "C.UTF-8"})

    try:
        instances = discover(
            run,
            service=module.params["service"],
            databases=module.params["databases"],
            python_packages=module.params["python_packages"],
        )
    except (DiscoveryError, OdooConfigError) as error:
        module.fail_json(msg=str(error))
    concerns = sort_concerns([item for instance in instances for item in instance["concerns"]])
    module.exit_json(changed=False, instances=instances, concerns=concerns)


if __name__ == "__main__":
    main()
