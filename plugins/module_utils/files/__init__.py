# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files: the filestore's sync and proof, to a directory or S3-compatible object storage.

Private to this collection: its modules, filters and callback import these; nothing else should.
"""
