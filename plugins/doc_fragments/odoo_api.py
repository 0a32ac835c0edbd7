# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # How a module reaches one Odoo database's external API as an administrator (odoo/admin_api.py).
    DOCUMENTATION = r"""
options:
  url:
    description: Base URL of the instance as the module reaches it (the proxy in front, or a container).
    type: str
    required: true
  database:
    description: The database.
    type: str
    required: true
  headers:
    description:
      - Extra request headers, such as C(Host) for a name-based proxy.
      - Over HTTPS a C(Host) header is also the TLS server name (SNI) and the name the certificate must carry.
    type: dict
    default: {}
  ca_path:
    description:
      - PEM bundle of the CA that signed the instance's certificate; empty, the system's trust store.
      - Certificates are always verified.
    type: path
  admin_login:
    description: An administrator of the database, as whom the module works.
    type: str
    default: admin
  admin_password:
    description: That administrator's password.
    type: str
    required: true
"""
