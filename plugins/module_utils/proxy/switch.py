# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rewrite an nginx site in front of Odoo: where it sends traffic, and a maintenance page.

Every state is rendered from the site as it was before the migration touched it (kept
aside on the first change), so going back to the legacy route restores it byte for byte.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SNIPPET = "/etc/nginx/snippets/odoo-migration-maintenance.conf"
INCLUDE_MARK = "# odoo-migration: maintenance"


def maintenance_snippet(retry_after, message):
    body = (
        "<!DOCTYPE html><html><head><title>Maintenance</title></head>"
        "<body><h1>Maintenance</h1><p>%s</p></body></html>" % message.replace("'", "&#39;").replace("\\", "")
    )
    return (
        "# Written by sysgenpro.odoo_migration while Odoo is moved; removed afterwards.\n"
        "add_header Retry-After %d always;\n"
        "add_header Cache-Control no-store always;\n"
        "default_type text/html;\n"
        "return 503 '%s';\n" % (int(retry_after), body)
    )


def _address_pattern(address):
    # The address as a whole word: not a prefix of a longer port or host.
    return r"(?<![\w.:-])%s(?![\w.:-])" % re.escape(address)


def route_to(text, mapping):
    """Replace each legacy address by its new one in upstream `server` lines and in proxy_pass URLs."""
    unmatched = []
    for old, new in sorted(mapping.items()):
        pattern = _address_pattern(old)
        # `server` starts a line or follows `{`/`;` (one-line upstream blocks).
        server_line = re.compile(r"((?:^|[{;])[ \t]*server[ \t]+)%s" % pattern, re.M)
        proxy_line = re.compile(r"(^[ \t]*proxy_pass[ \t]+https?://)%s" % pattern, re.M)
        replacement = r"\g<1>" + new.replace("\\", "\\\\")
        text, servers = server_line.subn(replacement, text)
        text, proxies = proxy_line.subn(replacement, text)
        if servers + proxies == 0:
            unmatched.append(old)
    return text, unmatched


def with_maintenance(text):
    """Include the maintenance snippet first in every server block, whatever follows its brace."""
    return re.sub(
        r"^([ \t]*)server[ \t]*\{[ \t]*\n?",
        lambda match: (
            "%s {\n%s    include %s; %s\n"
            % (match.group(0).split("{")[0].rstrip(), match.group(1), SNIPPET, INCLUDE_MARK)
        ),
        text,
        flags=re.M,
    )


def server_blocks(text):
    return len(re.findall(r"^[ \t]*server[ \t]*\{", text, flags=re.M))


def render(original, mapping, route, maintenance):
    """The site for a (route, maintenance) state, and the legacy addresses the site does not use."""
    text, unmatched = route_to(original, mapping) if route == "target" else (original, [])
    if maintenance:
        text = with_maintenance(text)
    return text, unmatched
