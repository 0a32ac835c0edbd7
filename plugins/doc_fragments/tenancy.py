# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The role map shared by the modules that act on both sides of a migration.
    DOCUMENTATION = r"""
options:
  role_map:
    description:
      - Source role name to target role name, for the roles renamed on the target (the plan's
        C(target_roles)). On a target shared by several instances each instance runs as roles of its own,
        since roles are cluster-wide; a role not in the map keeps its name.
      - Ownership, grants, default privileges, memberships and large objects carry the target's name.
    type: dict
    default: {}
"""
