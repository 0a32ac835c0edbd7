# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy in front of Odoo: nginx sites and the switch of their upstreams.

Private to this collection: its modules, filters and callback import these; nothing else should.
"""
