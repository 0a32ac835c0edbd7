# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: connections and SQL, preflight, copy and follow, cutover, compare, tenancy.

Private to this collection: its modules, filters and callback import these; nothing else should.
"""
