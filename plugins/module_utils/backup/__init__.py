# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of a legacy VM: pgBackRest's repository, its reports and the baseline's checks.

Private to this collection: its modules import these; nothing else should.
"""
