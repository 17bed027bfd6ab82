"""Strings from a chain pack, a node or a suite, made safe for the formats they land in.

Every such string is data: it may carry a newline and `### ✅ pass` (a forged Markdown
heading), a control character (XML 1.0 cannot hold it: junit.xml would not parse), or
`[/]` (rich console markup). These helpers keep the text readable and inert.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~])")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def one_line(value: Any) -> str:
    """The text on one line: newlines and other control characters become one space."""
    return _CONTROL.sub(" ", "" if value is None else str(value)).strip()


def md(value: Any) -> str:
    """Inline Markdown: one line, with emphasis, code, link, HTML and table characters escaped."""
    return _MARKDOWN.sub(r"\\\1", one_line(value))


def xml(value: Any) -> str:
    """Text XML 1.0 can hold: characters it forbids become U+FFFD (ElementTree escapes the rest)."""
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))
