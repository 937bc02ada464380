"""The Link header (RFC 8288): the target of rel="next", as a registry paginates its tags list."""
from __future__ import annotations

import re

# One link-value: <target> and its parameters up to the next link-value (a comma outside <>).
_LINK = re.compile(r'<(?P<target>[^>]*)>(?P<params>(?:\s*;\s*[^;,]*)*)')
_REL = re.compile(r'(?:^|;)\s*rel\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s;"]+))', re.IGNORECASE)


def next_link(values: list[str]) -> str | None:
    """The target (possibly relative) of the first link whose rel lists "next"; None when none does."""
    for value in values:
        for link in _LINK.finditer(value):
            rel = _REL.search(link["params"])
            if rel and "next" in (rel["quoted"] or rel["bare"] or "").lower().split():
                return link["target"].strip()
    return None
