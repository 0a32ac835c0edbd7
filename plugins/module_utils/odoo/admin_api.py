# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that work in one Odoo database as an administrator, and their client."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.smoke import OdooClient


def admin_api_options():
    """The argument spec of doc fragment odoo_api."""
    return dict(
        url=dict(type="str", required=True),
        database=dict(type="str", required=True),
        headers=dict(type="dict", default={}),
        ca_path=dict(type="path"),
        admin_login=dict(type="str", default="admin"),
        admin_password=dict(type="str", required=True, no_log=True),
    )


def admin_client(params, timeout):
    """An Odoo client for the module's database (SmokeError when the CA bundle cannot be read)."""
    return OdooClient(
        params["url"],
        params["database"],
        headers=params["headers"],
        timeout=timeout,
        ca_path=params["ca_path"],
    )
