from odoo import api, fields, models

RELATION_TABLE = "lab_document_partner_rel"
AUDIT_LOG_TABLE = "lab_audit_log"


class LabDocument(models.Model):
    """A business document numbered by a standalone ir.sequence (ir_sequence_NNN)."""

    _name = "lab.document"
    _description = "Lab document"
    _inherit = ["mail.thread"]
    _order = "id"

    name = fields.Char(required=True, copy=False, readonly=True, default="/")
    amount = fields.Float()
    state = fields.Selection(
        [("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled")],
        default="draft",
        required=True,
    )
    partner_ids = fields.Many2many(
        "res.partner", RELATION_TABLE, "document_id", "partner_id", string="Partners"
    )

    @api.model_create_multi
    def create(self, vals_list):
        sequence = self.env["ir.sequence"]
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = sequence.next_by_code("lab.document")
        return super().create(vals_list)

    def init(self):
        # Older Odoo versions created many2many tables without a primary key;
        # Odoo 19 adds one, so the lab recreates the old shape: unique index only.
        cr = self.env.cr
        cr.execute(
            """
            SELECT conname FROM pg_constraint
             WHERE conrelid = %s::regclass AND contype = 'p'
            """,
            [RELATION_TABLE],
        )
        for (constraint_name,) in cr.fetchall():
            cr.execute(f'ALTER TABLE {RELATION_TABLE} DROP CONSTRAINT "{constraint_name}"')
        cr.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {RELATION_TABLE}_unique "
            f"ON {RELATION_TABLE} (document_id, partner_id)"
        )
        # An append-only log table with neither a primary key nor a unique index.
        cr.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {AUDIT_LOG_TABLE} (
                logged_at timestamp with time zone NOT NULL DEFAULT now(),
                source varchar NOT NULL,
                message text
            )
            """
        )

    @api.model
    def _cron_audit_tick(self):
        self.env.cr.execute(
            f"INSERT INTO {AUDIT_LOG_TABLE} (source, message) VALUES ('cron', %s)",
            [f"audit tick: {self.search_count([])} documents"],
        )
