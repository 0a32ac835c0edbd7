# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Odoo: configuration rules, discovery of an instance, its image, smoke tests.

Private to this collection: its modules, filters and callback import these; nothing else should.
"""
