"""The HTML report opened in a real headless Chromium: what a person sees, checked through the DOM.

Generated documents here (a 1,000-container fleet, hostile names); the real stack's report in
test_stack_page.py. Each test saves a screenshot and prints its path.
"""
from __future__ import annotations

from engine.report_html import render_html
from tests.browser.pages import counts, network_requests, opened, set_filter, visible_rows
from tests.html.documents import HOSTILE, fleet_document, hostile_document

ENDPOINT_ROWS = "section[data-view=endpoint] tbody tr"
GLANCE_KEYS = ("stale", "outdated", "errors", "unreachable", "fresh", "skipped")


def test_a_1000_container_fleet_shows_the_summary_counts_and_loads_nothing(chromium, tmp_path, artefacts):
    doc = fleet_document()
    markup = render_html(doc)
    with opened(chromium, markup, tmp_path, "fleet-1000") as (page, seconds):
        shot = page.screenshot(artefacts / "fleet-1000.png", full_page=False)
        print(f"\n1,000 containers: {len(markup.encode())} bytes, load event after {seconds * 1000:.0f} ms; "
              f"screenshot {shot}")
        assert counts(page) == {key: doc["summary"][key] for key in GLANCE_KEYS}
        assert network_requests(page, (tmp_path / "fleet-1000.html").as_uri()) == []
        assert page.evaluate("window.__violations") == []
        assert page.evaluate("document.getElementById('controls').hidden") is False  # our script ran
        assert visible_rows(page, ENDPOINT_ROWS) == doc["summary"]["scanned"]


def test_the_status_filter_leaves_exactly_the_rows_of_that_status(chromium, tmp_path):
    doc = fleet_document()
    with opened(chromium, render_html(doc), tmp_path, "filter") as (page, _):
        for status, key in (("stale", "stale"), ("error", "errors"), ("fresh", "fresh"), ("skipped", "skipped"),
                            ("outdated", "outdated")):
            set_filter(page, status=status)
            assert visible_rows(page, ENDPOINT_ROWS) == doc["summary"][key], status
        set_filter(page)
        assert visible_rows(page, ENDPOINT_ROWS) == doc["summary"]["scanned"]


def test_the_text_filter_hides_other_containers_and_endpoints_without_a_match(chromium, tmp_path, artefacts):
    doc = fleet_document()
    with opened(chromium, render_html(doc), tmp_path, "text-filter") as (page, _):
        set_filter(page, "host-003")
        shown = page.evaluate("Array.from(document.querySelectorAll('section[data-view=endpoint] details'))"
                              ".filter(d => !d.hidden).map(d => d.querySelector('summary strong').textContent)")
        assert shown == ["host-003"]
        assert visible_rows(page, ENDPOINT_ROWS) == 50
        set_filter(page, "app-0007")
        assert visible_rows(page, ENDPOINT_ROWS) == 1
        page.screenshot(artefacts / "filtered.png", full_page=False)
        set_filter(page, "no such container anywhere")
        assert visible_rows(page, "tbody tr[data-status]") == 0
        assert page.evaluate("document.querySelector('section[data-view=endpoint] .none-shown').hidden") is False


def test_clicking_a_column_header_sorts_its_table(chromium, tmp_path):
    with opened(chromium, render_html(fleet_document(2, 30, unreachable=0)), tmp_path, "sort") as (page, _):
        names = ("Array.from(document.querySelectorAll('section[data-view=endpoint] details')[0]"
                 ".querySelectorAll('tbody tr')).map(r => r.cells[1].textContent)")
        header = "document.querySelectorAll('section[data-view=endpoint] details')[0].querySelectorAll('thead th')[1]"
        page.evaluate(f"{header}.querySelector('button').click()")
        ascending = page.evaluate(names)
        assert ascending == sorted(ascending) and page.evaluate(f"{header}.getAttribute('aria-sort')") == "ascending"
        page.evaluate(f"{header}.querySelector('button').click()")
        assert page.evaluate(names) == sorted(ascending, reverse=True)


def test_hostile_names_render_as_text_and_nothing_of_theirs_runs(chromium, tmp_path, artefacts):
    doc = hostile_document()
    with opened(chromium, render_html(doc), tmp_path, "hostile") as (page, _):
        shot = page.screenshot(artefacts / "hostile.png")
        print(f"\nhostile names: screenshot {shot}")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.evaluate("document.querySelectorAll('#injected, img, svg, iframe, b').length") == 0
        assert page.evaluate("document.querySelectorAll('script').length") == 2
        assert page.evaluate("window.__violations") == []
        text = page.evaluate("document.querySelector('main').textContent")
        for hostile in (HOSTILE[0], HOSTILE[1], HOSTILE[2], HOSTILE[3], HOSTILE[5], HOSTILE[7]):
            assert hostile in text
        assert page.evaluate("document.querySelector('h1').textContent") == f"spyglass: {doc['name']}"
        assert counts(page) == {key: doc["summary"][key] for key in GLANCE_KEYS}


def test_without_javascript_the_page_reads_the_same_and_hides_only_the_controls(chromium, tmp_path, artefacts):
    doc = fleet_document(4, 10)
    with opened(chromium, render_html(doc), tmp_path, "no-js", javascript=False) as (page, _):
        page.screenshot(artefacts / "no-javascript.png", full_page=False)
        assert counts(page) == {key: doc["summary"][key] for key in GLANCE_KEYS}
        assert visible_rows(page, "#controls") == 0
        problem_blocks = sum(e["status"] != "ok" for e in doc["endpoints"])
        assert page.evaluate("document.querySelectorAll('details[open]').length") == problem_blocks


def test_printed_every_endpoint_is_open_and_the_controls_are_gone(chromium, tmp_path, artefacts):
    doc = fleet_document(4, 10, unreachable=0)
    calm = dict(doc["endpoints"][0], status="ok", name="calm")
    doc["endpoints"].append(calm)
    with opened(chromium, render_html(doc), tmp_path, "print") as (page, _):
        closed_table = "document.querySelector('details:not([open]) table')"
        assert page.evaluate(f"{closed_table}.checkVisibility()") is False
        page.call("Emulation.setEmulatedMedia", {"media": "print"})
        assert page.evaluate(f"{closed_table}.checkVisibility()") is True  # print CSS alone, no script
        assert visible_rows(page, "#controls") == 0
        pdf = page.print_pdf(artefacts / "report.pdf")
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
