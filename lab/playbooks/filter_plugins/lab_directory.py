# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab directory's password hashes: OpenLDAP's {SSHA}, so that its seed holds no password in clear."""

import base64
import hashlib


def lab_ssha_hash(password, name):
    """{SSHA} of password. The salt is derived from the name and the password, so that the seed file is
    the same at every lab-up (a random salt would rewrite it each time)."""
    salt = hashlib.sha256(f"{name}\0{password}".encode()).digest()[:8]
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class FilterModule:
    def filters(self):
        return {"lab_ssha_hash": lab_ssha_hash}
