"""engine.challenge: WWW-Authenticate parsing per RFC 7235, lenient and linear-time."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.challenge import Challenge, find, parse_challenges

C = Challenge

CASES = [
    ("", []),
    ("Basic", [C("basic")]),
    ('Basic realm="r"', [C("basic", (("realm", "r"),))]),
    ('Bearer realm="https://a/token",service="reg",scope="repository:x:pull", Basic realm="r"', [
        C("bearer", (("realm", "https://a/token"), ("service", "reg"), ("scope", "repository:x:pull"))),
        C("basic", (("realm", "r"),)),
    ]),
    # several scopes in one value, spaces kept
    ('Bearer scope="repository:a:pull repository:b:pull,push"',
     [C("bearer", (("scope", "repository:a:pull repository:b:pull,push"),))]),
    # escaped quote and backslash, comma inside quotes
    (r'Bearer realm="a\"b\\c,d"', [C("bearer", (("realm", 'a"b\\c,d'),))]),
    # token values, extra whitespace, BWS around "="
    ("  BASIC   Realm = r ,  CHARSET=UTF-8  ", [C("basic", (("realm", "r"), ("charset", "UTF-8")))]),
    ('bEaReR REALM="x"', [C("bearer", (("realm", "x"),))]),
    # empty list elements
    (', ,Basic realm="r",, ,Bearer realm="b",', [C("basic", (("realm", "r"),)), C("bearer", (("realm", "b"),))]),
    # duplicate params: the first wins
    ('Bearer realm="first", REALM="second"', [C("bearer", (("realm", "first"),))]),
    ('Bearer realm=""', [C("bearer", (("realm", ""),))]),
    # token68
    ("Negotiate abc==", [C("negotiate", token68="abc==")]),
    ("Negotiate a-b._~+/c=, Basic realm=r", [C("negotiate", token68="a-b._~+/c="), C("basic", (("realm", "r"),))]),
    # the grammar cannot tell "realm=" alone from a token68; it fills the element, so token68
    ("Basic realm=", [C("basic", token68="realm=")]),
    # but a token68 is never followed by parameters
    ('Basic realm=, charset="UTF-8"', [C("basic", (("charset", "UTF-8"),))]),
    # schemes without parameters next to each other
    ("Basic, Negotiate, NTLM", [C("basic"), C("negotiate"), C("ntlm")]),
    ('Basic , Bearer realm="x"', [C("basic"), C("bearer", (("realm", "x"),))]),
    ('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"', [
        C("newauth", (("realm", "apps"), ("type", "1"), ("title", 'Login to "apps"'))),
        C("basic", (("realm", "simple"),)),
    ]),
]


@pytest.mark.parametrize("header, expected", CASES, ids=[repr(h[:40]) for h, _ in CASES])
def test_parses_challenges(header, expected):
    assert parse_challenges(header) == expected


MALFORMED = [
    # garbage elements are dropped, what can be read is kept
    ('"oops", Basic realm="r"', [C("basic", (("realm", "r"),))]),
    ('=x, Basic realm="r"', [C("basic", (("realm", "r"),))]),
    ('Bearer realm="unterminated', [C("bearer")]),
    ('Bearer realm="x" junk, service="s"', [C("bearer", (("service", "s"),))]),
    ('Bearer realm=, service="s"', [C("bearer", (("service", "s"),))]),
    ('Bearer realm="x", service="s" "y"', [C("bearer", (("realm", "x"),))]),
    ("Bäsic realm=r, Basic realm=s", [C("basic", (("realm", "s"),))]),
    ("\x00\r\n", []),
    (",,,", []),
    ('Bearer realm="a\\', [C("bearer")]),
]


@pytest.mark.parametrize("header, expected", MALFORMED, ids=[repr(h[:40]) for h, _ in MALFORMED])
def test_malformed_parts_are_dropped(header, expected):
    assert parse_challenges(header) == expected


def test_several_headers_are_combined_in_order():
    headers = ['Basic realm="one"', 'Bearer realm="two", Negotiate']
    assert [c.scheme for c in parse_challenges(headers)] == ["basic", "bearer", "negotiate"]


def test_non_string_header_values_are_ignored():
    assert parse_challenges([None, b"Basic", "Basic"]) == [C("basic")]  # type: ignore[list-item]


def test_param_accessor_is_case_insensitive():
    challenge = parse_challenges('Bearer Realm="r"')[0]
    assert (challenge.param("REALM"), challenge.param("service")) == ("r", None)


def test_find_matches_scheme_case_insensitively():
    challenges = parse_challenges('Basic realm="a", Bearer realm="b"')
    assert find(challenges, "BEARER") == challenges[1]
    assert find(challenges, "negotiate") is None


# Linear time, checked as a ratio inside one run (absolute times are noise on a loaded host): four
# times the input may cost about four times as much; a quadratic parser would cost sixteen.
@pytest.mark.parametrize("make", [
    lambda n: '"' * n,
    lambda n: "a=" * (n // 2),
    lambda n: ", " * (n // 2),
    lambda n: "Bearer " + 'realm="x",' * (n // 10),
    lambda n: "Bearer " + "a " * (n // 2),
    lambda n: "Basic" + " realm=r x" * (n // 10),
    lambda n: "\\" * n,
], ids=["quotes", "equals", "commas", "realms", "bare-words", "basic-params", "backslashes"])
def test_large_hostile_headers_parse_in_linear_time(make):
    def best_of_three(header: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            parse_challenges(header)
            times.append(time.perf_counter() - started)
        return min(times)

    small, large = best_of_three(make(5_000)), best_of_three(make(20_000))
    assert large < 10 * max(small, 1e-4), (small, large)


# --- properties ----------------------------------------------------------------

@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet='Bb a=",\\\t', max_size=60)))
def test_any_text_returns_a_list(header):
    assert isinstance(parse_challenges(header), list)


_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_token = st.text(alphabet=_TCHAR, min_size=1, max_size=8)
_token68 = st.tuples(st.text(alphabet="-._~+/aZ09", min_size=1, max_size=8),
                     st.sampled_from(["", "=", "=="])).map("".join)
_params = st.dictionaries(_token.map(str.lower), st.text(max_size=12), max_size=4)
_challenge = st.one_of(
    st.builds(lambda s, p: C(s.lower(), tuple(p.items())), _token, _params),
    st.builds(lambda s, t: C(s.lower(), token68=t), _token, _token68),
)


def _serialise(challenge: Challenge, scheme_case) -> str:
    quote = lambda v: '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    parts = [f"{key}={quote(value)}" for key, value in challenge.params]
    text = scheme_case(challenge.scheme)
    if challenge.token68 is not None:
        return f"{text} {challenge.token68}"
    return f"{text} {', '.join(parts)}" if parts else text


@settings(max_examples=1000, deadline=None)
@given(st.lists(_challenge, max_size=4), st.sampled_from([str.lower, str.upper, str.title]),
       st.sampled_from([", ", ",", " , ", ",,\t"]))
def test_serialised_challenges_parse_back(challenges, scheme_case, separator):
    header = separator.join(_serialise(c, scheme_case) for c in challenges)
    assert parse_challenges(header) == challenges
