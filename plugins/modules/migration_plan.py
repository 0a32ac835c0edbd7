#!/usr/bin/python
# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: migration_plan
short_description: Keep an instance's plan.yml, adding new decisions without touching the operator's
version_added: 0.1.0
description:
  - Creates the plan file from I(defaults) when it does not exist.
  - When it exists, its text is left exactly as the operator wrote it (values and comments); top-level
    keys of I(defaults) that the file lacks are appended at its end. Nothing is ever overwritten.
  - Returns the effective plan, the file's values over the defaults.
author:
  - sysgenpro platform engineering (@sysgenpro)
options:
  path:
    description: Path of the plan file.
    type: path
    required: true
  defaults:
    description: The decisions with their default values.
    type: dict
    required: true
  header:
    description: Comment written at the top of a new plan file.
    type: str
    default: Decisions for this instance. Edit freely; discovery adds keys, never overwrites yours.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be written without writing.
  diff_mode:
    support: full
    details: Shows the text that would be added.
  platform:
    platforms: posix
notes:
  - Runs where the state lives, normally the control node (C(delegate_to) localhost).
"""

EXAMPLES = r"""
- name: Keep the plan of this instance
  sysgenpro.odoo_migration.migration_plan:
    path: "migration-state/{{ inventory_hostname }}/plan.yml"
    defaults:
      wave: wave1
      tenancy: dedicated
  delegate_to: localhost
  register: plan
"""

RETURN = r"""
plan:
  description: The effective plan (the file's values over the defaults).
  returned: success
  type: dict
  sample: {wave: wave1, tenancy: dedicated}
added:
  description: Top-level keys appended to the file by this run.
  returned: success
  type: list
  elements: str
nested_missing:
  description: Keys inside an existing mapping that the file lacks; left for the operator to add.
  returned: success
  type: list
  elements: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False


DEFAULT_HEADER = "Decisions for this instance. Edit freely; discovery adds keys, never overwrites yours."


def dump(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True, indent=2)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            defaults=dict(type="dict", required=True),
            header=dict(type="str", default=DEFAULT_HEADER),
        ),
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(
            msg="PyYAML is required on the host that keeps the plan (it ships with ansible-core)"
        )
    path = module.params["path"]
    defaults = module.params["defaults"]
    before = ""
    current = {}
    if os.path.exists(path):
        with open(path) as handle:
            before = handle.read()
        try:
            current = yaml.safe_load(before) or {}
        except yaml.YAMLError as error:
            module.fail_json(
                msg="%s is not valid YAML (%s); fix it, or delete it to start again from the defaults"
                % (path, str(error).replace("\n", " "))
            )
        if not isinstance(current, dict):
            module.fail_json(
                msg="%s must hold a mapping of decisions, found %s" % (path, type(current).__name__)
            )
    added = sorted(key for key in defaults if key not in current)
    nested_missing = sorted(
        "%s.%s" % (key, sub)
        for key, value in defaults.items()
        if isinstance(value, dict) and isinstance(current.get(key), dict)
        for sub in value
        if sub not in current[key]
    )
    if not before:
        after = "".join("# %s\n" % line for line in module.params["header"].splitlines()) + dump(defaults)
    elif added:
        block = dump(dict((key, defaults[key]) for key in added))
        after = before + ("" if before.endswith("\n") else "\n") + "# added by discovery\n" + block
    else:
        after = before
    changed = after != before
    if changed and not module.check_mode:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".plan.")
        with os.fdopen(handle, "w") as stream:
            stream.write(after)
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
    plan = dict(defaults)
    for key, value in current.items():
        if isinstance(value, dict) and isinstance(plan.get(key), dict):
            merged = dict(plan[key])
            merged.update(value)
            plan[key] = merged
        else:
            plan[key] = value
    if nested_missing:
        module.warn(
            "%s lacks %s; add them by hand to use values other than the defaults"
            % (path, ", ".join(nested_missing))
        )
    result = dict(changed=changed, plan=plan, added=added if changed else [], nested_missing=nested_missing)
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
