# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL text the engine builds: identifiers and literals quoted in one place, private.

Statements run through psycopg use its `sql` module (Identifier, Literal). These helpers are for
the text the engine shows an operator (a fix to run, a planned statement) and for scripts it hands
to psql, where the quoting must be PostgreSQL's own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]*$")
# Reserved and type/function-name keywords of PostgreSQL: quote_ident() quotes these.
_KEYWORDS = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast check
    collate collation column concurrently constraint create cross current_catalog current_date
    current_role current_schema current_time current_timestamp current_user default deferrable desc
    distinct do else end except false fetch for foreign freeze from full grant group having ilike in
    initially inner intersect into is isnull join lateral leading left like limit localtime
    localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
    references returning right select session_user similar some symmetric system_user table
    tablesample then to trailing true union unique user using variadic verbose when where window
    with""".split()
)


def quote_ident(name):
    """Quote an identifier the way PostgreSQL's quote_ident() does (only where it must)."""
    name = str(name)
    if _PLAIN_IDENTIFIER.match(name) and name not in _KEYWORDS:
        return name
    return ident(name)


def ident(name):
    """An always-quoted identifier."""
    return '"%s"' % str(name).replace('"', '""')


def literal(text):
    """A string literal (standard_conforming_strings on, as every supported PostgreSQL has it)."""
    return "'%s'" % str(text).replace("'", "''")


def qualified(schema, name):
    """schema.name, both always quoted."""
    return "%s.%s" % (ident(schema), ident(name))
