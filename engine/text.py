"""Text from outside (a daemon, a registry, a token server) made inert for where it lands.

`one_line` is the one sanitizer: every line break or tab becomes a space and every other
character a terminal, a log reader or a mail client would act on (control characters, ANSI
escapes, bidi overrides, zero-width characters) becomes "?", then the text is cut to a length.
`markdown` is the one escape: `one_line`, then no character can open a table cell, an HTML
tag or entity, a link, an image, emphasis, a heading or a code span.
"""
from __future__ import annotations

_ELLIPSIS, _ASCII_ELLIPSIS = "…", "..."
_MARKDOWN = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "'", "*": "\\*",
                           "_": "\\_", "[": "\\[", "]": "\\]", "#": "\\#", "\\": "\\\\"})
MARKDOWN_LIMIT = 200  # a table cell or a summary line, not a log


def one_line(text: str, limit: int | None = None, *, ascii_only: bool = False) -> str:
    """One printable line of at most limit characters; ascii_only for places that take nothing else."""
    clean = "".join(map(_ascii_char if ascii_only else _char, text))
    if limit is None or len(clean) <= limit:
        return clean
    ellipsis = _ASCII_ELLIPSIS if ascii_only else _ELLIPSIS
    return clean[: max(limit - len(ellipsis), 0)] + ellipsis


def markdown(text: str, limit: int = MARKDOWN_LIMIT) -> str:
    """Inert in a markdown paragraph or table cell (GitHub's flavour, raw HTML included)."""
    return one_line(text, limit).translate(_MARKDOWN)


def _char(ch: str) -> str:
    if ch.isprintable():
        return ch
    return " " if ch.isspace() else "?"


def _ascii_char(ch: str) -> str:
    if " " <= ch <= "~":
        return ch
    return " " if ch.isspace() else "?"
