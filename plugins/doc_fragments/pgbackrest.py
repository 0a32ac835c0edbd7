# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The stanza and the pgBackRest the backup modules run on the VM, as the PostgreSQL owner.
    DOCUMENTATION = r"""
options:
  stanza:
    description: The pgBackRest stanza (the baseline makes one per VM, named after it).
    type: str
    required: true
  config:
    description: The pgBackRest configuration file; default pgBackRest's own.
    type: path
  pgbackrest:
    description: The pgBackRest executable.
    type: path
    default: pgbackrest
"""
