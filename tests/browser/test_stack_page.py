"""The real stack's report as a page: `spyglass scan --output html --report-html`, opened in Chromium.

The stack (tests/stack: a TLS dockerd, a token-auth registry and a plain one, the demo fleet)
gives a report whose every status we know; the page must show the same counts as the JSON
report of the same run, every demo container with its status as text, and load nothing.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from handler.cli import main
from tests.browser.pages import counts, network_requests, opened, set_filter, visible_rows

GLANCE_KEYS = ("stale", "outdated", "errors", "unreachable", "fresh", "skipped")


def test_the_stack_report_page_shows_what_the_json_report_says(stack, demo_fleet, chromium, tmp_path, artefacts):
    json_path, html_path = tmp_path / "report.json", tmp_path / "report.html"
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "html", *stack.scan_args(), "--report-file", str(json_path),
                 "--report-html", str(html_path)], env=stack.env(), stdout=out, stderr=err,
                home=Path(stack.workdir))
    assert code == 0, err.getvalue()
    document = json.loads(json_path.read_text())
    page_text = html_path.read_text()
    assert out.getvalue() == page_text
    with opened(chromium, page_text, tmp_path, "stack") as (page, seconds):
        shot = page.screenshot(artefacts / "stack-report.png")
        print(f"\nstack report: {len(page_text.encode())} bytes, load event after {seconds * 1000:.0f} ms; "
              f"screenshot {shot}")
        assert counts(page) == {key: document["summary"][key] for key in GLANCE_KEYS}
        assert network_requests(page, (tmp_path / "stack.html").as_uri()) == []
        assert page.evaluate("window.__violations") == []
        rows = json.loads(page.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll('section[data-view=endpoint] tbody tr'))"
            ".map(r => [r.cells[1].textContent, r.cells[0].textContent.trim().split(/\\s+/)[0]]))"))
        shown = {name: status.lower() for name, status in rows}
        for name, (status, _reason) in demo_fleet.items():
            assert shown[name] == status, name
        set_filter(page, status="stale")
        stale = [c for e in document["endpoints"] for c in e["containers"] if c["status"] == "stale"]
        assert visible_rows(page, "section[data-view=endpoint] tbody tr") == len(stale) >= 1
