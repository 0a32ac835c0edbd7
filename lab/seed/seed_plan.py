"""How much a lab Odoo database holds for a given size knob.

One source of truth for the seed script (which creates the records) and for the
tests (which check that the records are there). Run as a script it prints the plan
as JSON: ``python3 seed_plan.py SCALE_MB``.
"""

import json
import sys

# Bytes budget shares of one scale megabyte; the rest is what Odoo itself stores.
ATTACHMENT_SHARE = 0.45
AUDIT_LOG_SHARE = 0.25
AUDIT_LOG_ROW_BYTES = 160
ATTACHMENT_MEAN_BYTES = 48 * 1024
# One attachment in this many reuses the content of an earlier one, as users re-upload
# the same file: Odoo stores it once in the filestore.
DUPLICATE_CONTENT_EVERY = 10

MIN_SCALE_MB = 5
MAX_SCALE_MB = 20_000


def seed_plan(scale_mb):
    """Return the counts one seeded database holds at ``scale_mb`` megabytes."""
    if not isinstance(scale_mb, int) or isinstance(scale_mb, bool):
        raise ValueError(f"scale_mb must be a whole number of megabytes, got {scale_mb!r}")
    if not MIN_SCALE_MB <= scale_mb <= MAX_SCALE_MB:
        raise ValueError(
            f"scale_mb={scale_mb} is out of range: use {MIN_SCALE_MB} to {MAX_SCALE_MB} megabytes"
        )
    megabyte = 1024 * 1024
    attachments = max(20, int(scale_mb * megabyte * ATTACHMENT_SHARE / ATTACHMENT_MEAN_BYTES))
    documents = 12 * scale_mb
    return {
        "scale_mb": scale_mb,
        "partners": 10 * scale_mb + 40,
        "products": 2 * scale_mb + 10,
        "sale_orders": 2 * scale_mb,
        "sale_order_lines_per_order": 3,
        "confirmed_sale_orders": scale_mb,
        "purchase_orders": max(5, scale_mb // 2),
        "documents": documents,
        "document_partner_links": 2 * documents,
        "messages": 4 * scale_mb,
        "attachments": attachments,
        "attachment_mean_bytes": ATTACHMENT_MEAN_BYTES,
        "duplicate_content_every": DUPLICATE_CONTENT_EVERY,
        "audit_log_rows": int(scale_mb * megabyte * AUDIT_LOG_SHARE / AUDIT_LOG_ROW_BYTES),
        "audit_log_row_bytes": AUDIT_LOG_ROW_BYTES,
    }


def main(argv):
    if len(argv) != 2:
        print("usage: seed_plan.py SCALE_MB", file=sys.stderr)
        return 2
    try:
        plan = seed_plan(int(argv[1]))
    except ValueError as error:
        print(f"seed_plan: {error}", file=sys.stderr)
        return 2
    print(json.dumps(plan, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
