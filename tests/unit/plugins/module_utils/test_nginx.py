"""The nginx site reader: what the ingress in front of the containers must reproduce."""

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.proxy import nginx as _nginx

SITE = """
# Odoo behind nginx
upstream odoo { server 127.0.0.1:8069; }
upstream odoochat { server 127.0.0.1:8072; }
map $http_upgrade $connection_upgrade { default upgrade; '' close; }
server {
    listen 443 ssl http2;
    server_name erp.example.com "www.erp.example.com";
    ssl_certificate /etc/ssl/erp.pem;
    client_max_body_size 200m;
    proxy_read_timeout 720s;
    add_header Strict-Transport-Security "max-age=31536000";
    location /websocket {
        proxy_pass http://odoochat;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
    }
    location / { proxy_pass http://odoo; proxy_read_timeout 900s; }
    location /web/static/ { alias /srv/static/; }
}
server { listen 80; server_name erp.example.com; return 301 https://$host$request_uri; }
"""


def test_summarize_reads_servers_upstreams_tls_and_carried_directives():
    summary = _nginx.summarize(SITE, "/etc/nginx/sites-enabled/erp")
    https, http = summary["servers"]
    assert summary["upstreams"] == {"odoo": ["127.0.0.1:8069"], "odoochat": ["127.0.0.1:8072"]}
    assert https["server_names"] == ["erp.example.com", "www.erp.example.com"]
    assert https["tls"] is True and https["certificate"] == "/etc/ssl/erp.pem"
    assert https["client_max_body_size"] == "200m"
    assert https["add_header"] == "Strict-Transport-Security max-age=31536000"
    websocket, root, static = https["locations"]
    assert websocket == {"path": "/websocket", "proxy_pass": "http://odoochat", "websocket": True}
    assert root["proxy_read_timeout"] == "900s"
    assert static["proxy_pass"] is None
    assert http["tls"] is False


def test_odoo_routes_follow_named_upstreams_and_direct_addresses():
    routes = _nginx.odoo_routes(_nginx.summarize(SITE), 8069, 8072)
    assert routes == [
        {
            "server_names": ["erp.example.com", "www.erp.example.com"],
            "listen": ["443 ssl http2"],
            "http_locations": ["/"],
            "websocket_locations": ["/websocket"],
        }
    ]
    direct = _nginx.summarize("server { listen 80; location / { proxy_pass http://10.0.0.5:8069/; } }")
    assert _nginx.odoo_routes(direct, 8069, 8072)[0]["websocket_locations"] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server { listen 80;", "missing '}'"),
        ("server { listen 80; }}", "unbalanced"),
        ("listen 80", "lacks ';'"),
        ('server_name "open', "unterminated"),
    ],
)
def test_broken_files_raise_a_parse_error(text, message):
    with pytest.raises(_nginx.NginxParseError, match=message):
        _nginx.summarize(text)
