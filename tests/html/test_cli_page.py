"""`spyglass scan --output html` and `--report-html` against the real stack: the page of the same run as the JSON."""
from __future__ import annotations

import io
import json
from pathlib import Path

from handler.cli import main
from tests.html.page import parse

GLANCE_KEYS = ("stale", "outdated", "errors", "unreachable", "fresh", "skipped")


def test_the_page_beside_the_json_report_shows_its_counts_and_every_container(stack, demo_fleet, tmp_path):
    json_path, html_path = tmp_path / "out" / "report.json", tmp_path / "out" / "report.html"
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *stack.scan_args(), "--report-file", str(json_path),
                 "--report-html", str(html_path)], env=stack.env(), stdout=out, stderr=err,
                home=Path(stack.workdir))
    assert code == 0, err.getvalue()
    document = json.loads(out.getvalue())
    assert json.loads(json_path.read_text())["summary"] == document["summary"]
    page = parse(html_path.read_text())
    assert {key: int(page.by_id(f"count-{key}").text) for key in GLANCE_KEYS} == {
        key: document["summary"][key] for key in GLANCE_KEYS}
    endpoint_view = page.by_id("view-endpoint")
    rows = [e for e in page.all("tr") if "data-status" in e.attrs]
    for name, (status, _reason) in demo_fleet.items():
        assert any(name in row.text and row.attrs["data-status"].split()[0] == status for row in rows), name
    assert endpoint_view.text == "By endpoint"


def test_output_html_prints_the_page_on_stdout(stack, demo_fleet, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "-o", "html", *stack.scan_args(), "web-1"], env=stack.env(), stdout=out, stderr=err,
                home=Path(stack.workdir))
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith("<!DOCTYPE html>") and out.getvalue().rstrip().endswith("</html>")
    assert int(parse(out.getvalue()).by_id("count-fresh").text) == 1
