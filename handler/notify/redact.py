"""Notification URLs are secrets: what of one may be shown, and how to take it out of free text.

Apprise's URLs carry their credentials in every part: user and password
(``mailto://user:pass@host``), the host itself (``slack://TokenA/TokenB/TokenC``,
``discord://webhook_id/webhook_token``, ``tgram://bot_token/chat``), path segments (a
webhook path), query values (``?token=``, ``+Authorization=`` headers) and the fragment.
So a URL is shown as its scheme, plus host and port only for the schemes whose host
is a server's name; and every part of it is a secret that :class:`Redactor` replaces
in any text (Apprise's own log lines, an exception's message) before it is shown.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote

HIDDEN = "***"
# Schemes whose host part is a server name, not a token.
HOST_SCHEMES = frozenset({
    "json", "jsons", "form", "forms", "xml", "xmls", "mailto", "mailtos", "ntfy", "ntfys", "gotify", "gotifys",
    "mmost", "mmosts", "matrix", "matrixs", "rocket", "rockets", "apprise", "apprises", "nctalk", "nctalks",
    "ncloud", "nclouds", "zulip", "mastodon", "mastodons", "signal", "signals"})
MIN_SECRET = 3  # shorter pieces (a port, "to") are not worth mangling every message for; passwords always count


def scheme(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head.strip().lower() if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", head.strip()) else ""


def describe(url: str, index: int) -> str:
    """How a URL is named in logs, reports and errors: its place in the list and what is safe to show."""
    kind = scheme(url)
    if not kind:
        return f"notify URL {index} (not a URL)"
    host = _host(url) if kind in HOST_SCHEMES else ""
    return f"notify URL {index} ({kind}://{host}…)" if host else f"notify URL {index} ({kind}://…)"


def secrets_of(url: str) -> frozenset[str]:
    """Every piece of the URL that could be a credential, as written and percent-decoded."""
    kind = scheme(url)
    rest = url.strip().partition("://")[2] if kind else url.strip()
    pieces = {url.strip(), rest}
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if password:
        pieces |= {password, unquote(password)}
    pieces |= {user, fragment, *path.split("/")}
    if kind not in HOST_SCHEMES:
        pieces |= {hostport, *hostport.split(":")}
    for key, value in parse_qsl(query, keep_blank_values=True):
        pieces |= {value, *value.split(",")}
    expanded = set()
    for piece in pieces:
        expanded |= {piece, unquote(piece), quote(unquote(piece), safe="")}
    keep = {password, unquote(password)} if password else set()
    return frozenset(p for p in expanded if len(p) >= MIN_SECRET or (p and p in keep))


class Redactor:
    """Replaces every secret of the given URLs in a text, the longest first."""

    def __init__(self, urls) -> None:
        found: set[str] = set()
        for url in urls:
            found |= secrets_of(url)
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        return text


def _host(url: str) -> str:
    netloc = url.strip().partition("://")[2].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = netloc.rpartition("@")[2]
    return host if re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?", host) else ""
