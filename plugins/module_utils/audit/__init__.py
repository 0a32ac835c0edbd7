# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit journal: append-only and hash-chained.

Private to this collection: its modules, filters and callback import these; nothing else should.
"""
