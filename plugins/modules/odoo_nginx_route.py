#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_nginx_route
short_description: Point the nginx in front of Odoo at the legacy or new instance, or show maintenance
version_added: 0.1.0
description:
  - Runs on the host whose nginx fronts Odoo. Renders the site file from the version it had before the
    migration first changed it (kept in O(state_dir)), with the legacy Odoo addresses replaced by the new
    ones (O(route=target)) and/or a maintenance page (HTTP 503 with C(Retry-After)) included first in
    every server block.
  - Validates with C(nginx -t) before reloading; on a failed test the previous file is put back and
    nothing is reloaded. O(route=legacy) without maintenance restores the original file byte for byte
    and forgets the saved copy.
author:
  - sysgenpro platform engineering (@sysgenpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Renders the file and reports whether it would change; writes and reloads nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  site_file:
    description: The nginx site that routes to Odoo (discovery's C(nginx.sites[].file)).
    type: path
    required: true
  route:
    description: Send traffic to the C(legacy) addresses or to the C(target) ones of O(upstreams).
    type: str
    choices: [legacy, target]
    required: true
  upstreams:
    description: Map of legacy address (C(127.0.0.1:8069)) to new address (C(10.0.0.5:8069)).
    type: dict
    default: {}
  maintenance:
    description: Answer every request with the maintenance page.
    type: bool
    default: false
  retry_after:
    description: Seconds announced in C(Retry-After).
    type: int
    default: 120
  page_text:
    description: Text of the maintenance page.
    type: str
    default: This service is being moved and will be back in a few minutes.
  state_dir:
    description: Where the original site is kept while the migration changes it.
    type: path
    default: /var/lib/odoo-migration/nginx
"""

EXAMPLES = r"""
- name: Maintenance page in front of the legacy Odoo
  sysgenpro.odoo_migration.odoo_nginx_route:
    site_file: /etc/nginx/sites-enabled/odoo
    route: legacy
    maintenance: true
  become: true

- name: Send traffic to the containers and lift the maintenance page
  sysgenpro.odoo_migration.odoo_nginx_route:
    site_file: /etc/nginx/sites-enabled/odoo
    route: target
    upstreams:
      127.0.0.1:8069: 10.20.0.7:8069
      127.0.0.1:8072: 10.20.0.7:8072
  become: true
"""

RETURN = r"""
route:
  description: Where the site sends traffic now.
  returned: success
  type: str
maintenance:
  description: Whether the maintenance page is on.
  returned: success
  type: bool
reloaded:
  description: Whether nginx was reloaded.
  returned: success
  type: bool
original_kept:
  description: Path of the kept original, while the site differs from it.
  returned: success
  type: str
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.proxy import switch as _nginx_switch


def read(path):
    with open(path) as handle:
        return handle.read()


def write(module, path, text, mode=0o644):
    temporary = path + ".odoo-migration.tmp"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.chmod(temporary, mode)
    module.atomic_move(temporary, path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            site_file=dict(type="path", required=True),
            route=dict(type="str", choices=["legacy", "target"], required=True),
            upstreams=dict(type="dict", default={}),
            maintenance=dict(type="bool", default=False),
            retry_after=dict(type="int", default=120),
            page_text=dict(
                type="str", default="This service is being moved and will be back in a few minutes."
            ),
            state_dir=dict(type="path", default="/var/lib/odoo-migration/nginx"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # The site may be a symlink (sites-enabled -> sites-available): change the file it points to.
    site = os.path.realpath(params["site_file"])
    if not os.path.isfile(site):
        module.fail_json(
            msg="nginx site %s does not exist: pass the file discovery reported" % params["site_file"]
        )
    if params["route"] == "target" and not params["upstreams"]:
        module.fail_json(msg="route=target needs upstreams (legacy address -> new address)")
    kept = os.path.join(params["state_dir"], site.strip("/").replace("/", "__") + ".orig")
    current = read(site)
    original = read(kept) if os.path.isfile(kept) else current
    desired, unmatched = _nginx_switch.render(
        original, params["upstreams"], params["route"], params["maintenance"]
    )
    if unmatched:
        module.fail_json(
            msg="the site %s does not use %s: the upstreams map does not match this site "
            "(check discovery's nginx section); nothing was changed" % (site, ", ".join(unmatched))
        )
    if params["maintenance"] and _nginx_switch.server_blocks(original) == 0:
        module.fail_json(msg="the site %s has no server block to put the maintenance page in" % site)
    snippet = _nginx_switch.maintenance_snippet(params["retry_after"], params["page_text"])
    snippet_current = read(_nginx_switch.SNIPPET) if os.path.isfile(_nginx_switch.SNIPPET) else None
    snippet_changes = params["maintenance"] and snippet_current != snippet
    changed = desired != current or snippet_changes
    restoring = desired == original and params["route"] == "legacy" and not params["maintenance"]
    result = dict(
        changed=changed,
        route=params["route"],
        maintenance=params["maintenance"],
        reloaded=False,
        original_kept="" if restoring else kept,
        diff=dict(before=current, after=desired, before_header=site, after_header=site),
    )
    if module.check_mode or not changed:
        if not module.check_mode and restoring and os.path.isfile(kept):
            os.remove(kept)
        module.exit_json(**result)

    if not os.path.isfile(kept) and not restoring:
        os.makedirs(params["state_dir"], mode=0o700, exist_ok=True)
        shutil.copy2(site, kept)
    if snippet_changes:
        os.makedirs(os.path.dirname(_nginx_switch.SNIPPET), exist_ok=True)
        write(module, _nginx_switch.SNIPPET, snippet)
    mode = os.stat(site).st_mode & 0o7777
    write(module, site, desired, mode)
    rc, out, err = module.run_command(["nginx", "-t", "-q"])
    if rc != 0:
        write(module, site, current, mode)
        module.fail_json(
            msg="nginx -t refused the new site, the previous one is back: %s" % (err or out).strip(), **result
        )
    rc, out, err = module.run_command(["systemctl", "reload", "nginx"])
    if rc != 0:
        module.fail_json(msg="reloading nginx failed: %s" % (err or out).strip(), **result)
    if restoring and os.path.isfile(kept):
        os.remove(kept)
    result["reloaded"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
