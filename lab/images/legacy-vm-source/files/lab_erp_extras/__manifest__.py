{
    "name": "Lab ERP extras",
    "summary": "Globex's own sales fields; needs humanize, installed in the virtualenv only",
    "version": "19.0.1.2.0",
    "license": "LGPL-3",
    "author": "sysgenpro lab",
    "category": "Sales",
    "depends": ["sale_management"],
    "external_dependencies": {"python": ["humanize"]},
    "data": [],
    "installable": True,
    "application": False,
}
