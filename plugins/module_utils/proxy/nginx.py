# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the nginx sites in front of Odoo: what a container ingress must reproduce.

A small tokenizer and block parser (pure, unit-tested): directives, quoted strings,
`# comments`, nested blocks. `include` is not followed; the caller feeds every site file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Directives whose value a reverse proxy in front of the containers must carry over.
CARRIED_DIRECTIVES = (
    "client_max_body_size",
    "proxy_read_timeout",
    "proxy_connect_timeout",
    "proxy_send_timeout",
    "keepalive_timeout",
    "gzip",
    "add_header",
    "proxy_cookie_flags",
)


class NginxParseError(Exception):
    """The file is not nginx syntax this parser understands."""


def tokenize(text):
    tokens = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
        elif char == "#":
            end = text.find("\n", index)
            index = length if end == -1 else end
        elif char in "{};":
            tokens.append(char)
            index += 1
        elif char in "\"'":
            end = index + 1
            while end < length and text[end] != char:
                end += 2 if text[end] == "\\" else 1
            if end >= length:
                raise NginxParseError("unterminated quoted string")
            tokens.append(text[index + 1 : end])
            index = end + 1
        else:
            match = re.compile(r"[^\s{};\"']+").match(text, index)
            tokens.append(match.group(0))
            index = match.end()
    return tokens


def parse(text):
    """Return a list of (name, args, children or None)."""
    tokens = tokenize(text)
    position = [0]

    def block(depth):
        entries = []
        words = []
        while position[0] < len(tokens):
            token = tokens[position[0]]
            position[0] += 1
            if token == ";":
                if words:
                    entries.append((words[0], words[1:], None))
                words = []
            elif token == "{":
                if not words:
                    raise NginxParseError("block without a name")
                entries.append((words[0], words[1:], block(depth + 1)))
                words = []
            elif token == "}":
                if depth == 0:
                    raise NginxParseError("unbalanced '}'")
                return entries
            else:
                words.append(token)
        if depth:
            raise NginxParseError("missing '}'")
        if words:
            raise NginxParseError("directive %r lacks ';'" % " ".join(words))
        return entries

    return block(0)


def _walk(entries, name):
    for entry in entries:
        if entry[0] == name:
            yield entry
        if entry[2] is not None:
            yield from _walk(entry[2], name)


def _directives(entries):
    values = {}
    for name, args, children in entries:
        if children is None and name in CARRIED_DIRECTIVES:
            values.setdefault(name, []).append(" ".join(args))
    return dict((key, value[0] if len(value) == 1 else value) for key, value in values.items())


def summarize(text, path="site"):
    """Server blocks, upstreams and routes of one nginx file."""
    entries = parse(text)
    upstreams = {}
    for _name, args, children in _walk(entries, "upstream"):
        servers = [" ".join(item[1]) for item in children or [] if item[0] == "server"]
        upstreams[args[0] if args else ""] = servers
    servers = []
    for _name, _args, server_children in _walk(entries, "server"):
        children = server_children or []
        if not any(item[0] in ("listen", "server_name", "location") for item in children):
            continue
        listens = [" ".join(item[1]) for item in children if item[0] == "listen"]
        locations = []
        for _loc, loc_args, location_children in _walk(children, "location"):
            loc_children = location_children or []
            proxy = [" ".join(item[1]) for item in loc_children if item[0] == "proxy_pass"]
            upgrade = any(
                item[0] == "proxy_set_header" and item[1] and item[1][0].lower() == "upgrade"
                for item in loc_children
            )
            route = {
                "path": " ".join(loc_args),
                "proxy_pass": proxy[0] if proxy else None,
                "websocket": upgrade,
            }
            route.update(_directives(loc_children))
            locations.append(route)
        server = {
            "file": path,
            "listen": listens,
            "server_names": [name for item in children if item[0] == "server_name" for name in item[1]],
            "tls": any("ssl" in listen.split() for listen in listens)
            or any(item[0] == "ssl_certificate" for item in children),
            "certificate": next(
                (" ".join(item[1]) for item in children if item[0] == "ssl_certificate"), None
            ),
            "locations": locations,
        }
        server.update(_directives(children))
        servers.append(server)
    return {"file": path, "servers": servers, "upstreams": upstreams}


def upstream_ports(proxy_pass, upstreams):
    """The ports a proxy_pass target reaches, through a named upstream or directly."""
    if not proxy_pass:
        return []
    target = re.sub(r"^https?://", "", proxy_pass).split("/")[0]
    addresses = upstreams.get(target, [target])
    ports = []
    for address in addresses:
        match = re.search(r":(\d+)(?:\s|$)", address + " ")
        ports.append(int(match.group(1)) if match else 80)
    return ports


def odoo_routes(summary, http_port, gevent_port):
    """Which server blocks send traffic to Odoo and where the websocket goes."""
    routes = []
    for server in summary["servers"]:
        http, websocket = [], []
        for location in server["locations"]:
            ports = upstream_ports(location["proxy_pass"], summary["upstreams"])
            if http_port in ports:
                http.append(location["path"])
            if gevent_port in ports:
                websocket.append(location["path"])
        if http or websocket:
            routes.append(
                {
                    "server_names": server["server_names"],
                    "listen": server["listen"],
                    "http_locations": http,
                    "websocket_locations": websocket,
                }
            )
    return routes
