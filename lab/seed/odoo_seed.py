# Seeds one lab database; run inside `odoo shell`, which provides `env`.
# Input comes from the environment: LAB_SEED_PLAN (JSON from seed_plan.py),
# LAB_ODOO_ADMIN_PASSWORD and LAB_WEB_BASE_URL. One transaction: all or nothing.
import json
import os
import random

from odoo import Command

SEED_MARKER = "lab.seed.scale_mb"


def seed(env, plan, admin_password, web_base_url):
    params = env["ir.config_parameter"].sudo()
    if params.get_param(SEED_MARKER):
        print(f"lab seed: already seeded at {params.get_param(SEED_MARKER)} MB")
        return
    rng = random.Random(env.cr.dbname)
    env.ref("base.user_admin").password = admin_password

    partners = env["res.partner"].create(
        [
            {
                "name": f"Customer {index:05d}",
                "email": f"customer{index:05d}@lab.invalid",
                "is_company": index % 3 == 0,
                "city": rng.choice(["Lyon", "Porto", "Graz", "Ghent", "Turku"]),
            }
            for index in range(plan["partners"])
        ]
    )
    products = env["product.product"].create(
        [
            {
                "name": f"Item {index:04d}",
                "type": "consu",
                "list_price": rng.randint(5, 500),
                "standard_price": rng.randint(1, 300),
            }
            for index in range(plan["products"])
        ]
    )

    def order_lines(quantity_field):
        return [
            Command.create(
                {
                    "product_id": rng.choice(products).id,
                    quantity_field: rng.randint(1, 20),
                    "price_unit": rng.randint(5, 500),
                }
            )
            for _ in range(plan["sale_order_lines_per_order"])
        ]

    sale_orders = env["sale.order"].create(
        [
            {"partner_id": rng.choice(partners).id, "order_line": order_lines("product_uom_qty")}
            for _ in range(plan["sale_orders"])
        ]
    )
    sale_orders[: plan["confirmed_sale_orders"]].action_confirm()
    env["purchase.order"].create(
        [
            {"partner_id": rng.choice(partners).id, "order_line": order_lines("product_qty")}
            for _ in range(plan["purchase_orders"])
        ]
    )

    documents = env["lab.document"].create(
        [
            {
                "amount": rng.randint(10, 10000),
                "state": rng.choice(["draft", "posted", "posted", "cancel"]),
                "partner_ids": [Command.set(rng.sample(partners.ids, 2))],
            }
            for _ in range(plan["documents"])
        ]
    )

    for index in range(plan["messages"]):
        rng.choice(partners).message_post(
            body=f"Call note {index}: customer asked about order status.",
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )

    mean = plan["attachment_mean_bytes"]
    contents = []
    for index in range(plan["attachments"]):
        if contents and index % plan["duplicate_content_every"] == 0:
            raw = rng.choice(contents)
        else:
            raw = rng.randbytes(rng.randint(mean // 4, mean * 7 // 4))
            contents.append(raw)
        record = rng.choice(documents) if index % 2 else rng.choice(partners)
        env["ir.attachment"].create(
            {
                "name": f"scan-{index:05d}.pdf",
                "raw": raw,
                "res_model": record._name,
                "res_id": record.id,
                "mimetype": "application/pdf",
            }
        )

    env.cr.execute(
        """
        INSERT INTO lab_audit_log (logged_at, source, message)
        SELECT now() - g * interval '1 minute', 'legacy-import', repeat(md5(g::text), 4)
          FROM generate_series(1, %s) AS g
        """,
        [plan["audit_log_rows"]],
    )

    params.set_param("web.base.url", web_base_url)
    params.set_param(SEED_MARKER, str(plan["scale_mb"]))
    env.cr.commit()
    print("lab seed: seeded {} at {} MB".format(env.cr.dbname, plan["scale_mb"]))


seed(
    env,  # noqa: F821 - provided by `odoo shell`
    json.loads(os.environ["LAB_SEED_PLAN"]),
    os.environ["LAB_ODOO_ADMIN_PASSWORD"],
    os.environ["LAB_WEB_BASE_URL"],
)
