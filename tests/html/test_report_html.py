"""engine.report_html: the page says what the JSON says, loads nothing, and no outside text becomes markup.

The browser tests (tests/browser) open the same pages in Chromium; these read the markup alone.
"""
import base64
import hashlib
import json
import re
import time

import jsonschema
import pytest

from engine.report import schema
from engine.report_html import CONTENT_SECURITY_POLICY, render_html, script_json
from tests.html.documents import HOSTILE, container, document, endpoint, fleet_document, hostile_document
from tests.html.page import parse

SIZE_BUDGET = 512 * 1024  # a 1,000-container fleet: an e-mail attachment, open at once


def test_the_generated_documents_are_valid_reports():
    for doc in (fleet_document(), hostile_document()):
        jsonschema.validate(doc, schema())


def counts_shown(page) -> dict:
    return {key: int(page.by_id(f"count-{key}").text)
            for key in ("stale", "outdated", "errors", "unreachable", "fresh", "skipped")}


def test_the_counts_at_the_top_are_the_summary():
    doc = fleet_document()
    page = parse(render_html(doc))
    assert counts_shown(page) == {key: doc["summary"][key]
                                  for key in ("stale", "outdated", "errors", "unreachable", "fresh", "skipped")}
    assert doc["summary"]["scanned"] == 1000 and all(counts_shown(page).values())


def test_the_scan_time_and_duration_are_shown():
    page = parse(render_html(fleet_document(3, 4)))
    assert "2026-11-30 22:00:00 UTC" in page.all("time")[0].text
    assert page.by_id("duration").text == "4.3 s"


def test_a_1000_container_fleet_stays_under_the_size_budget():
    doc = fleet_document()
    started = time.perf_counter()
    markup = render_html(doc)
    elapsed = time.perf_counter() - started
    size = len(markup.encode())
    print(f"1,000 containers: {size} bytes ({size / 1024:.0f} KiB, budget {SIZE_BUDGET // 1024} KiB), "
          f"rendered in {elapsed * 1000:.0f} ms")
    assert size < SIZE_BUDGET


def test_every_container_has_one_row_by_endpoint_and_each_stale_or_outdated_image_one_row():
    doc = fleet_document(5, 20)
    page = parse(render_html(doc))
    rows = [e for e in page.all("tr") if "data-status" in e.attrs]
    containers = [c for e in doc["endpoints"] for c in e["containers"]]
    images = {c["image"] for c in containers if c["status"] == "stale" or c["newer"]}
    errors = sum(c["status"] == "error" for c in containers) + doc["summary"]["unreachable"]
    assert len(rows) == len(containers) + len(images) + errors


def test_an_image_on_two_endpoints_is_one_row_naming_both_places():
    stale = container(2, image="registry.example/shared:1")
    again = dict(stale, name="other")
    doc = document("two", [endpoint("alpha", [stale]), endpoint("beta", [again])])
    page = parse(render_html(doc))
    image_rows = [e for e in page.all("tr") if "stale" in e.attrs.get("data-status", "") and "registry.example/shared:1"
                  in e.text and "alpha: app-0002" in e.text]
    assert len(image_rows) == 1 and "beta: other" in image_rows[0].text


def test_an_unreachable_endpoint_shows_its_reason_in_its_block_and_among_the_errors():
    doc = fleet_document(3, 2, unreachable=1)
    page = parse(render_html(doc))
    blocks = [e for e in page.all("details") if "unreachable" in e.attrs["data-status"]]
    assert len(blocks) == 1 and "open" in blocks[0].attrs
    assert "connection-refused: connect tcp://host-002.example:2376: connection refused" in blocks[0].text
    error_rows = [e for e in page.all("tr") if "(the endpoint)" in e.text]
    assert len(error_rows) == 1 and "connection-refused" in error_rows[0].text


def test_an_endpoint_with_nothing_to_do_is_closed_and_one_that_needs_attention_open():
    fresh = container(0)
    doc = document("f", [endpoint("calm", [fresh]), endpoint("busy", [container(2)])])
    blocks = {e.attrs["data-status"]: e for e in parse(render_html(doc)).all("details")}
    assert "open" not in blocks["ok"].attrs and "open" in blocks["stale attention"].attrs


def test_a_fleet_of_one_without_containers_renders():
    page = parse(render_html(document("tcp://h:2376", [endpoint("h", [])])))
    assert counts_shown(page) == dict.fromkeys(("stale", "outdated", "errors", "unreachable", "fresh", "skipped"), 0)
    assert "No containers matched." in page.by_id("view-endpoint").text or any(
        "No containers matched." in e.text for e in page.all("details"))


def test_missing_or_odd_fields_do_not_break_the_page():
    odd = {"schema_version": 2, "endpoints": [{"status": "weird", "containers": [{"status": 7, "name": None,
                                                                                  "newer": "x"}]}]}
    markup = render_html(odd)
    assert "weird" in markup and markup.rstrip().endswith("</html>")


# -- nothing loads, nothing but our own code runs --------------------------------------------

def _digest(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def test_the_policy_forbids_every_load_and_allows_exactly_the_inline_style_and_script():
    markup = render_html(fleet_document(2, 3))
    page = parse(markup)
    policy = next(e.attrs["content"] for e in page.all("meta") if e.attrs.get("http-equiv") == "Content-Security-Policy")
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["base-uri"] == "'none'"
    styles, scripts = page.all("style"), [e for e in page.all("script") if "type" not in e.attrs]
    assert len(styles) == 1 and len(scripts) == 1
    assert directives["style-src"] == _digest(styles[0].text) and directives["script-src"] == _digest(scripts[0].text)
    assert markup.index("Content-Security-Policy") < markup.index("<style>")


def test_no_element_points_anywhere_but_an_inline_data_url():
    page = parse(render_html(hostile_document()))
    pointers = [(e.tag, name, value) for e in page.elements for name, value in e.attrs.items()
                if name in ("src", "href", "action", "srcset", "poster", "data")]
    assert pointers == [("link", "href", "data:,")]


# -- hostile text ------------------------------------------------------------------------------

def test_hostile_strings_render_as_text_and_add_no_element_or_attribute():
    markup = render_html(hostile_document())
    page = parse(markup)
    tags = {e.tag for e in page.elements}
    assert not tags & {"img", "svg", "b", "iframe", "object"}
    assert [e.tag for e in page.all("script")] == ["script", "script"]
    assert not [e for e in page.elements if e.attrs.get("id") == "injected"]
    assert not [name for e in page.elements for name in e.attrs if name.startswith("on")]
    visible = "".join(e.text for e in page.all("main"))
    for hostile in HOSTILE[:4] + HOSTILE[5:6] + HOSTILE[7:]:
        assert hostile in visible  # shown as the very text it is


def test_bidi_controls_and_line_separators_never_reach_the_page():
    markup = render_html(hostile_document())
    for control in ("\u202e", "\u2066", "\u2069", "\u2028", "\u2029", "\x1b"):
        assert control not in markup
    assert "evil?exe.gpj?bidi?" in markup


def test_the_json_island_cannot_close_its_script_and_reads_back_unchanged():
    doc = hostile_document()
    markup = render_html(doc)
    island = re.search(r'<script type="application/json" id="report-meta">(.*?)</script>', markup, re.S).group(1)
    assert "<" not in island and ">" not in island and "&" not in island
    meta = json.loads(island)
    assert meta["name"] == doc["name"] and meta["summary"] == doc["summary"]


@pytest.mark.parametrize("value", ["</script>", "<!--", "]]>", "\u2028", "&amp;", {"k": "</SCRIPT >"}])
def test_script_json_escapes_what_could_end_or_alter_a_script(value):
    encoded = script_json(value)
    assert not re.search(r"[<>&\u2028\u2029]", encoded)
    assert json.loads(encoded) == value


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_text_colour_has_at_least_aa_contrast_on_the_backgrounds_it_sits_on():
    from engine.report_html import _STYLE

    colours = dict(re.findall(r"--([a-z]+):(#[0-9a-f]{6})", _STYLE))
    for name in ("fg", "muted", "stale", "error", "ok", "out"):
        for background in ("#ffffff", "#f0f0f0", "#f6f6f6"):  # the page, table heads, the controls
            lighter, darker = sorted((_luminance(colours[name]), _luminance(background)), reverse=True)
            assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (name, background)


def test_tables_have_column_headers_and_each_container_or_image_row_a_row_header():
    markup = render_html(fleet_document(3, 10))
    page = parse(markup)
    assert all(e.attrs.get("scope") in ("col", "row") for e in page.all("th"))
    image_and_endpoint_views = markup.split('<section data-view="errors"')[0]
    rows = image_and_endpoint_views.count("<tr data-status=")
    assert rows > 20 and image_and_endpoint_views.count('<th scope="row"') == rows
