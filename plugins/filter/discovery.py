# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the discover role uses to turn module results into migration-state files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import (
    discovery_state as _discovery_state,
)


def instance_facts(instance):
    return _discovery_state.split_instance(instance)[0]


def instance_measurements(instance):
    return _discovery_state.split_instance(instance)[1]


def preflight_facts(result):
    return _discovery_state.split_preflight(result)[0]


def preflight_measurements(result):
    return _discovery_state.split_preflight(result)[1]


def plan_defaults(facts, host, wave, measurements, settings):
    return _discovery_state.plan_defaults(host, wave, facts, measurements, settings)


class FilterModule:
    def filters(self):
        return {
            "instance_facts": instance_facts,
            "instance_measurements": instance_measurements,
            "preflight_facts": preflight_facts,
            "preflight_measurements": preflight_measurements,
            "plan_defaults": plan_defaults,
        }
