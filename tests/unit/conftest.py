"""Make the collection importable as ansible_collections.sysgenpro.odoo_migration."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".build" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "sysgenpro" / "odoo_migration"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(REPO, LINK)
sys.path.insert(0, str(COLLECTIONS))
sys.path.insert(0, str(REPO / "lab" / "seed"))
sys.path.insert(0, str(REPO / "lab" / "images"))
sys.path.insert(0, str(REPO / "lab"))
