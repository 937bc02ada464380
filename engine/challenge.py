"""WWW-Authenticate challenges (RFC 7235 section 4.1), parsed leniently.

    challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param = token BWS "=" BWS ( token / quoted-string )

One header may hold several challenges and a response several headers. The
comma separates both parameters and challenges, so after each comma we look
ahead: "token =" continues the current challenge, anything else starts a new
one. The scanner only moves forward, so any input costs linear time, and a
part it cannot read is skipped up to the next comma instead of raising:
a registry's odd header must not stop a scan that could still try Basic.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Challenge", "parse_challenges", "find"]

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789"
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SPACE = " \t"


@dataclass(frozen=True)
class Challenge:
    """One challenge: scheme and parameter names lower-cased, first duplicate kept."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None

    def param(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.params if key == wanted), None)


def parse_challenges(values: str | Iterable[str]) -> list[Challenge]:
    """Every challenge found in one header value or in several; never raises."""
    if isinstance(values, str):
        values = [values]
    found: list[Challenge] = []
    for value in values:
        if isinstance(value, str):
            found.extend(_Scanner(value).challenges())
    return found


def find(challenges: Iterable[Challenge], scheme: str) -> Challenge | None:
    """The first challenge with this scheme (compared case-insensitively)."""
    wanted = scheme.lower()
    return next((c for c in challenges if c.scheme == wanted), None)


class _Scanner:
    """A cursor over one header value; every method leaves `pos` at or after where it began."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def challenges(self) -> list[Challenge]:
        found = []
        while self._skip_separators():
            scheme = self._token()
            if not scheme or not (self._at_end() or self._at_comma() or self._peek() in _SPACE):
                self._skip_element()  # not a scheme: drop this list element
                continue
            found.append(self._challenge(scheme.lower()))
        return found

    def _challenge(self, scheme: str) -> Challenge:
        self._skip(_SPACE)
        token68 = self._token68()
        if token68 is not None:
            return Challenge(scheme, token68=token68)
        params: dict[str, str] = {}
        while self._starts_param():
            key, value = self._param()
            if value is not None:
                params.setdefault(key, value)
        return Challenge(scheme, tuple(params.items()))

    def _token68(self) -> str | None:
        """token68 only when it fills this list element and no auth-param follows.

        `realm=, service="s"` reads as parameters (the first one empty), not as the
        token68 "realm=", because a token68 is never followed by parameters.
        """
        start = self.pos
        self._skip(_TOKEN68)
        self._skip("=")
        end = self.pos
        self._skip(_SPACE)
        if end > start and (self._at_end() or self._at_comma()):
            after = self.pos
            if not self._starts_param():
                self.pos = after
                return self.text[start:end]
        self.pos = start
        return None

    def _starts_param(self) -> bool:
        """Skip to the next element; true when it reads "token =", not a new scheme."""
        self._skip(_SPACE + ",")
        start = self.pos
        found = bool(self._token())
        self._skip(_SPACE)
        found = found and self._peek() == "="
        self.pos = start
        return found

    def _param(self) -> tuple[str, str | None]:
        key = self._token().lower()
        self._skip(_SPACE)
        self.pos += 1  # the "=" that _starts_param saw
        self._skip(_SPACE)
        value = self._quoted() if self._peek() == '"' else (self._token() or None)
        self._skip(_SPACE)
        if value is None or not (self._at_end() or self._at_comma()):
            self._skip_element()  # unterminated quote or trailing garbage: drop the param
            return key, None
        return key, value

    def _quoted(self) -> str | None:
        chars = []
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(chars)
            if char == "\\" and self.pos < len(self.text):
                char = self.text[self.pos]
                self.pos += 1
            chars.append(char)
        return None

    def _token(self) -> str:
        start = self.pos
        self._skip(_TCHAR)
        return self.text[start:self.pos]

    def _skip_separators(self) -> bool:
        self._skip(_SPACE + ",")
        return not self._at_end()

    def _skip_element(self) -> None:
        # Quotes are not honoured here: after garbage we cannot tell where a quote began.
        comma = self.text.find(",", self.pos)
        self.pos = len(self.text) if comma == -1 else comma

    def _skip(self, chars: str | frozenset[str]) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _at_comma(self) -> bool:
        return self._peek() == ","

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)
