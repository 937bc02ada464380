"""Version tags: the parser, the order and the proposals, by the rules of issue 12."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from engine.versions import Newer, ParsedTags, TagPolicy, compile_filter, parse_version, propose


@pytest.mark.parametrize("tag, prefix, numbers, family, pre", [
    ("1", "", (1,), "", None),
    ("1.25", "", (1, 25), "", None),
    ("v1.25.3", "v", (1, 25, 3), "", None),
    ("1.25.3-alpine", "", (1, 25, 3), "alpine", None),
    ("1.25.3-alpine3.20", "", (1, 25, 3), "alpine3.20", None),
    ("2024.04.1", "", (2024, 4, 1), "", None),
    ("1.2.3.4", "", (1, 2, 3, 4), "", None),
    ("1.0.0-rc1", "", (1, 0, 0), "", (4, 1)),
    ("1.0.0-beta.2", "", (1, 0, 0), "", (2, 2)),
    ("1.0.0-alpha", "", (1, 0, 0), "", (1,)),
    ("1.0.0-dev", "", (1, 0, 0), "", (0,)),
    ("1.2.0-rc1-alpine", "", (1, 2, 0), "alpine", (4, 1)),
    ("1.2.0-alpine-rc1", "", (1, 2, 0), "alpine", (4, 1)),
    ("1.2.3+build.7", "", (1, 2, 3), "", None),
    ("16-bookworm", "", (16,), "bookworm", None),
])
def test_version_tags_parse(tag, prefix, numbers, family, pre):
    version = parse_version(tag)
    assert (version.prefix, version.numbers, version.family, version.pre_release) == (prefix, numbers, family, pre)


@pytest.mark.parametrize("tag", ["latest", "stable", "edge", "main", "3f2a1b9", "sha-3f2a1b9", "20240101",
                                 "202401011230", "1.2.3.4.5", "v", "", "1.", ".1", "1..2", "V1.2",
                                 "1.2-", "x" * 200, "1." + "1" * 130])
def test_non_versions_are_refused(tag):
    assert parse_version(tag) is None


@pytest.mark.parametrize("lower, higher", [
    ("1.9", "1.10"), ("1.2.3-rc1", "1.2.3"), ("1.2.3-alpha", "1.2.3-beta"), ("1.2.3-beta.2", "1.2.3-beta.10"),
    ("1.2.3-dev", "1.2.3-alpha"), ("1.2.3-rc1", "1.2.3-rc2"), ("2024.04.1", "2024.10.1"), ("1.2.3", "1.2.4"),
])
def test_order(lower, higher):
    assert parse_version(lower).key < parse_version(higher).key


def test_leading_zeros_compare_as_numbers_and_the_text_breaks_the_tie():
    assert parse_version("2024.04.1").numbers == parse_version("2024.4.1").numbers
    assert parse_version("1.02").key != parse_version("1.2").key


NGINX = ["1.25.3", "1.25.4", "1.25.5", "1.26.0", "1.27.2", "1.27.1", "1.27.3-rc1", "2.0.0-beta.1",
         "1.25.3-alpine", "1.25.5-alpine", "1.27.2-alpine", "1.27.2-alpine3.20", "v1.99.0", "1.28",
         "latest", "stable", "mainline", "1.24.0"]


@pytest.mark.parametrize("running, tags, policy, expected", [
    ("1.25.3", NGINX, TagPolicy(), Newer("1.25.5", "1.27.2", None)),
    ("1.25.3-alpine", NGINX, TagPolicy(), Newer("1.25.5-alpine", "1.27.2-alpine", None)),
    ("1.25.3", NGINX, TagPolicy("patch"), Newer("1.25.5", None, None)),
    ("1.25.3", NGINX, TagPolicy("minor"), Newer("1.25.5", "1.27.2", None)),
    ("1.25.3", NGINX, TagPolicy("off"), Newer()),
    ("1.27.2", NGINX, TagPolicy(), Newer()),
    ("16", ["15", "16", "17", "18-rc1", "17.1", "16-alpine", "17-alpine"], TagPolicy(), Newer(None, None, "17")),
    ("20.11", ["20.10", "20.12", "21.0", "22.1", "22.0", "20.11.1", "22.1.0"], TagPolicy(), Newer(None, "20.12", "22.1")),
    ("1.2.0-rc1", ["1.2.0-rc2", "1.2.0-rc3", "1.3.0-rc1", "1.2.1"], TagPolicy(), Newer("1.2.1", None, None)),
    ("1.2.0-rc1", ["1.2.0-rc2", "1.3.0-rc1"], TagPolicy(), Newer("1.2.0-rc2", None, None)),
    ("2024.04.1", ["2024.04.2", "2024.10.1", "2025.01.0", "2023.12.9"], TagPolicy(), Newer("2024.04.2", "2024.10.1", "2025.01.0")),
    ("v1.2.3", ["v1.2.4", "1.2.9", "v2.0.0"], TagPolicy(), Newer("v1.2.4", None, "v2.0.0")),
    ("1.25.3", ["2025.01.0", "1.25.4"], TagPolicy(), Newer("1.25.4", None, None)),  # found in the real registry
    ("2024.04.1", ["2025.1.0", "1.25.4", "999.0.0"], TagPolicy(), Newer(None, None, "2025.1.0")),
    ("1.2.3.4", ["1.2.3.5", "1.2.4.0", "1.3.0.0", "1.2.4"], TagPolicy(), Newer("1.2.4.0", "1.3.0.0", None)),
    ("1.25.3", NGINX, TagPolicy(exclude=compile_filter(r"^1\.27")), Newer("1.25.5", "1.26.0", None)),
    ("1.25.3", NGINX, TagPolicy(include=compile_filter(r"^1\.25\.")), Newer("1.25.5", None, None)),
])
def test_proposals(running, tags, policy, expected):
    assert propose(parse_version(running), tags, policy) == expected
    # a list parsed once (as a fleet's scan does for every container of the repository) answers alike
    parsed = ParsedTags(tags)
    assert propose(parse_version(running), parsed, policy) == expected
    assert propose(parse_version(running), parsed, policy) == expected


def test_highest_names_the_largest_step():
    assert Newer("1.25.5", "1.27.2", None).highest == ("1.27.2", "minor")
    assert Newer().highest is None and not Newer().any


@pytest.mark.parametrize("pattern", ["(", "a" * 300])
def test_bad_filters_say_why(pattern):
    with pytest.raises(ValueError):
        compile_filter(pattern)


# -- properties ---------------------------------------------------------------

component = st.integers(0, 120).map(str) | st.integers(0, 9).map(lambda n: f"0{n}")
suffix = st.sampled_from(["", "-alpine", "-alpine3.20", "-rc1", "-rc2", "-beta.2", "-alpha", "-dev", "-rc1-alpine"])
version_tags = st.builds(lambda v, parts, s: v + ".".join(parts) + s, st.sampled_from(["", "v"]),
                         st.lists(component, min_size=1, max_size=4), suffix)


@settings(max_examples=300)
@given(st.lists(version_tags, min_size=1, max_size=30, unique=True), st.randoms())
def test_order_is_total_and_stable_under_shuffling(tags, rng):
    keys = [parse_version(t).key for t in tags]
    assert len(set(keys)) == len(keys)  # distinct tags never tie
    ordered = sorted(tags, key=lambda t: parse_version(t).key)
    shuffled = list(tags)
    rng.shuffle(shuffled)
    assert sorted(shuffled, key=lambda t: parse_version(t).key) == ordered


@settings(max_examples=300)
@given(version_tags, st.lists(version_tags, max_size=40), st.sampled_from(["patch", "minor", "major"]))
def test_no_proposal_is_older_or_equal_or_of_another_shape(running_tag, tags, level):
    running = parse_version(running_tag)
    newer = propose(running, tags, TagPolicy(level))
    rng = random.Random(0)
    shuffled = list(tags)
    rng.shuffle(shuffled)
    assert propose(running, shuffled, TagPolicy(level)) == newer
    for proposed in filter(None, (newer.patch, newer.minor, newer.major)):
        candidate = parse_version(proposed)
        assert candidate.key > running.key
        assert candidate.shape == running.shape
        assert proposed in tags


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused(text):
    version = parse_version(text)
    assert version is None or version.tag == text
