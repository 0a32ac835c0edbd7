{
    "name": "Lab legacy traps",
    "summary": "Custom addon of the lab's legacy VMs: the tables a migration trips over",
    "version": "19.0.1.2.0",
    "license": "LGPL-3",
    "author": "sysgenpro lab",
    "category": "Hidden",
    "depends": ["base", "mail", "contacts"],
    "external_dependencies": {"python": ["qrcode"], "bin": []},
    "data": [
        "security/ir.model.access.csv",
        "data/lab_document_sequence.xml",
        "data/lab_audit_cron.xml",
    ],
    "installable": True,
    "application": False,
}
