"""Rewriting the nginx site in front of Odoo: the route and the maintenance page."""

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.proxy import switch as _nginx_switch

SITE = """upstream odoo {
    server 127.0.0.1:8069;
}
upstream odoochat {
\tserver 127.0.0.1:8072 max_fails=3;
}
upstream other {
    server 127.0.0.1:80690;
    server 10.127.0.0.1:8069;
}
server {
    listen 80;
    server_name erp.example.com;
    location / {
        proxy_pass http://odoo;
    }
    location /legacy {
        proxy_pass http://127.0.0.1:8069;
    }
}
server {
    listen 443 ssl;
    location /websocket {
      proxy_pass https://127.0.0.1:8072/websocket;
    }
}
"""
MAPPING = {"127.0.0.1:8069": "10.0.5.2:8069", "127.0.0.1:8072": "10.0.5.2:8072", "127.0.0.1:9999": "x:1"}


def test_route_to_replaces_upstream_servers_and_proxy_pass_urls():
    text, unmatched = _nginx_switch.route_to(SITE, MAPPING)
    assert "upstream odoo {\n    server 10.0.5.2:8069;\n}" in text
    assert "\tserver 10.0.5.2:8072 max_fails=3;" in text
    assert "        proxy_pass http://10.0.5.2:8069;\n" in text
    assert "      proxy_pass https://10.0.5.2:8072/websocket;\n" in text
    assert "proxy_pass http://odoo;" in text
    assert unmatched == ["127.0.0.1:9999"]


def test_route_to_leaves_longer_addresses_alone():
    text, _ = _nginx_switch.route_to(SITE, MAPPING)
    assert "    server 127.0.0.1:80690;\n" in text
    assert "    server 10.127.0.0.1:8069;\n" in text


def test_route_to_reports_every_unmatched_address():
    text, unmatched = _nginx_switch.route_to("server {\n    listen 80;\n}\n", {"b:1": "x", "a:1": "y"})
    assert text == "server {\n    listen 80;\n}\n"
    assert unmatched == ["a:1", "b:1"]


def test_with_maintenance_includes_the_snippet_in_server_blocks_only():
    text = _nginx_switch.with_maintenance(SITE)
    include = f"include {_nginx_switch.SNIPPET}; {_nginx_switch.INCLUDE_MARK}"
    assert text.count(include) == 2 == _nginx_switch.server_blocks(SITE)
    assert f"server {{\n    {include}\n    listen 80;" in text
    assert f"server {{\n    {include}\n    listen 443 ssl;" in text
    for name in ("odoo", "odoochat", "other"):
        block = text[text.index(f"upstream {name} {{") :]
        assert include not in block[: block.index("}")]


def test_with_maintenance_keeps_the_indentation_of_nested_server_blocks():
    text = _nginx_switch.with_maintenance("http {\n  server {\n    listen 80;\n  }\n}\n")
    assert "  server {\n      include " in text


def test_render_legacy_without_maintenance_is_the_original_byte_for_byte():
    original = SITE.replace("\n", "\r\n", 1) + "   \n"
    text, unmatched = _nginx_switch.render(original, MAPPING, "legacy", False)
    assert text == original and unmatched == []


def test_render_target_with_maintenance_does_both():
    text, unmatched = _nginx_switch.render(SITE, MAPPING, "target", True)
    assert "server 10.0.5.2:8069;" in text and _nginx_switch.INCLUDE_MARK in text
    assert unmatched == ["127.0.0.1:9999"]


def test_maintenance_snippet_answers_503_with_retry_after():
    snippet = _nginx_switch.maintenance_snippet(120, "We're moving Odoo")
    assert "add_header Retry-After 120 always;" in snippet
    assert "return 503 '" in snippet
    assert "We&#39;re moving Odoo" in snippet
    body = snippet[snippet.index("return 503 '") + len("return 503 '") : snippet.rindex("';")]
    assert "'" not in body


def test_with_maintenance_covers_a_server_block_with_text_after_its_brace():
    site = "server {  # main\n  listen 80;\n}\nserver { listen 81; }\n"
    rendered = _nginx_switch.with_maintenance(site)
    assert rendered.count(f"include {_nginx_switch.SNIPPET};") == _nginx_switch.server_blocks(site) == 2


def test_route_to_switches_a_one_line_upstream_block():
    text, unmatched = _nginx_switch.route_to(
        "upstream odoo { server 127.0.0.1:8069; }\n", {"127.0.0.1:8069": "odoo-web:8069"}
    )
    assert text == "upstream odoo { server odoo-web:8069; }\n"
    assert unmatched == []
