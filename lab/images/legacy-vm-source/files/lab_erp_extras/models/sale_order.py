import humanize
from odoo import api, fields, models


class SaleOrder(models.Model):
    _inherit = "sale.order"

    lab_erp_reference = fields.Char(string="ERP reference", copy=False, index=True)
    lab_erp_amount_words = fields.Char(string="Amount in words", compute="_compute_lab_erp_amount_words")

    @api.depends("amount_total")
    def _compute_lab_erp_amount_words(self):
        for order in self:
            order.lab_erp_amount_words = humanize.intword(int(order.amount_total))
