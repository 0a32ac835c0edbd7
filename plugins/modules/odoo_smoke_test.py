#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: odoo_smoke_test
short_description: Prove an Odoo instance works as a user would, through its HTTP API
version_added: 0.1.0
description:
  - Runs the checks an operator does by hand after a move and fails when any of them fails, with every
    check's result and timing returned either way.
  - C(health) GET C(/web/health); C(version) the server series from C(/web/webclient/version_info);
    C(login) a real login through C(/web/session/authenticate); C(attachment) one stored attachment
    downloaded and the SHA-1 of its bytes compared with C(ir.attachment.checksum); C(cron) the newest
    C(lastcall) of the active crons is recent; C(websocket) GET C(/websocket/health).
  - Over HTTPS the server's certificate and name are always verified, against O(ca_path) when given, else
    the system's trust store. A C(Host) header in O(headers) is also the TLS server name (SNI) and the name
    the certificate must carry, as for a browser that resolved that name to the address of O(url).
  - The login is checked through Odoo's external API (C(/jsonrpc)), which never touches C(web.base.url). The
    attachment is downloaded in a web session, as a browser does, only when that web login cannot rewrite
    C(web.base.url) (an administrator's web login stores the URL it came through unless
    C(web.base.url.freeze) is set); otherwise its bytes are read through the external API and the check's
    detail says why. Send the public C(Host) header (O(headers)) to get the download.
  - A login writes one C(res_users_log) row; RV(wrote) lists every such write and C(changed) is true
    when there is one.
author:
  - sysgenpro platform engineering (@sysgenpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode runs only the checks that write nothing (C(health), C(version), C(websocket)) and lists
        the others in RV(skipped_checks) with the reason; C(changed) says whether a real run would write.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  url:
    description: Base URL of the instance (the proxy in front, or a container's port).
    type: str
    required: true
  database:
    description: The database to log in to; also sent as C(X-Odoo-Database) for routes without a session.
    type: str
    required: true
  login:
    description: User that logs in.
    type: str
    default: admin
  password:
    description: That user's password.
    type: str
    required: true
  headers:
    description: Extra request headers, such as C(Host) for a name-based proxy.
    type: dict
    default: {}
  checks:
    description:
      - Which checks to run, in this order.
      - C(login) moves before C(attachment) and C(cron), which need its session.
    type: list
    elements: str
    choices: [health, version, login, attachment, cron, websocket]
    default: [health, version, login, attachment, cron, websocket]
  expect_version:
    description: Series the server must report, such as C(19.0); empty accepts any.
    type: str
    default: ""
  attachment_id:
    description: The attachment to fetch; by default the first stored binary attachment.
    type: int
  cron_max_age_minutes:
    description: How recent the newest run of an active cron must be.
    type: float
    default: 10
  timeout:
    description: Seconds for each HTTP request.
    type: int
    default: 30
  ca_path:
    description:
      - PEM bundle of the CA (or CAs) that signed the server's certificate, such as a private CA's, on the
        host the module runs on (the controller when delegated to it). Only these CAs are trusted, with
        verification on.
      - A missing or unreadable bundle, or one without a certificate, fails before any request.
      - Unset, the system's trust store is used. There is no option to turn verification off.
    type: path
"""

EXAMPLES = r"""
- name: Prove the moved instance answers like the old one
  sysgenpro.odoo_migration.odoo_smoke_test:
    url: http://127.0.0.1:8069
    database: acme
    password: "{{ odoo_admin_password }}"
    expect_version: "19.0"
  delegate_to: localhost

- name: Prove it through the public proxy, served over TLS with a private CA
  sysgenpro.odoo_migration.odoo_smoke_test:
    url: https://10.0.4.21
    headers:
      Host: erp.example.com
    database: acme
    password: "{{ odoo_admin_password }}"
    ca_path: /etc/pki/example-internal-ca.pem
  delegate_to: localhost
"""

RETURN = r"""
checks:
  description: One entry per check run, with C(name), C(ok), C(detail) and C(seconds).
  returned: always
  type: list
  elements: dict
  sample: [{name: health, ok: true, detail: "HTTP 200 {\"status\": \"pass\"}", seconds: 0.01}]
failed_checks:
  description: Names of the checks that failed.
  returned: always
  type: list
  elements: str
skipped_checks:
  description: The checks check mode did not run, each with C(name) and C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{name: login, reason: "a login writes a res_users_log row"}]
wrote:
  description: What the checks wrote in the instance's database, one line each; empty in check mode.
  returned: always
  type: list
  elements: str
  sample: ["res_users_log: one row (the login of admin)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import smoke as _smoke

# Checks that log in, and so write a res_users_log row.
WRITING_CHECKS = ("login", "attachment", "cron")
LOGIN_WRITES = "a login writes a res_users_log row"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            database=dict(type="str", required=True),
            login=dict(type="str", default="admin"),
            password=dict(type="str", required=True, no_log=True),
            headers=dict(type="dict", default={}),
            checks=dict(
                type="list",
                elements="str",
                choices=["health", "version", "login", "attachment", "cron", "websocket"],
                default=["health", "version", "login", "attachment", "cron", "websocket"],
            ),
            expect_version=dict(type="str", default=""),
            attachment_id=dict(type="int"),
            cron_max_age_minutes=dict(type="float", default=10),
            timeout=dict(type="int", default=30),
            ca_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        client = _smoke.OdooClient(
            params["url"], params["database"], params["headers"], params["timeout"], ca_path=params["ca_path"]
        )
    except _smoke.SmokeError as error:
        module.fail_json(msg=str(error), checks=[], failed_checks=[], skipped_checks=[], wrote=[])
    available = {
        "health": (_smoke.check_health, ()),
        "version": (_smoke.check_version, (params["expect_version"],)),
        "login": (_smoke.check_login, (params["login"], params["password"])),
        "attachment": (
            _smoke.check_attachment,
            (params["attachment_id"], params["login"], params["password"]),
        ),
        "cron": (_smoke.check_cron, (params["cron_max_age_minutes"],)),
        "websocket": (_smoke.check_websocket, ()),
    }
    wanted = list(params["checks"])
    if any(name in wanted for name in ("attachment", "cron")):
        # attachment and cron read with the credentials the login checked: log in before them.
        if "login" in wanted:
            wanted.remove("login")
        first_needing_login = min(wanted.index(name) for name in ("attachment", "cron") if name in wanted)
        wanted.insert(first_needing_login, "login")
    skipped = []
    if module.check_mode:
        # A login writes a res_users_log row; attachment and cron need the login.
        skipped = [
            dict(
                name=name,
                reason="a login writes a res_users_log row" if name == "login" else "needs the login",
            )
            for name in wanted
            if name in WRITING_CHECKS
        ]
        wanted = [name for name in wanted if name not in WRITING_CHECKS]
    plan = [(name, available[name][0], available[name][1]) for name in wanted]
    results = _smoke.run_checks(client, plan)
    failed = [item["name"] for item in results if not item["ok"]]
    outcome = dict(
        changed=bool(client.wrote) or bool(module.check_mode and skipped),
        checks=results,
        failed_checks=failed,
        skipped_checks=skipped,
        wrote=list(client.wrote),
    )
    if failed:
        outcome["msg"] = "smoke test of %s (%s) failed: %s" % (
            params["url"],
            params["database"],
            "; ".join("%s: %s" % (item["name"], item["detail"]) for item in results if not item["ok"]),
        )
        module.fail_json(**outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
