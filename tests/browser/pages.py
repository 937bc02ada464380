"""Opening a rendered report in the test browser, with watchers installed before the page's own code."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

# Runs before the page's scripts and outside its CSP: records policy violations (an injected
# script or style would be one) and gives the page a value no report string may change.
WATCHERS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


@contextmanager
def opened(chromium, markup: str, folder: Path, name: str, *, javascript: bool = True):
    """(page, seconds to the load event) for markup written to folder/name.html and opened from file://."""
    path = folder / f"{name}.html"
    path.write_text(markup, encoding="utf-8")
    page = chromium.new_page()
    try:
        page.before_load(WATCHERS)
        if not javascript:
            page.call("Emulation.setScriptExecutionDisabled", {"value": True})
        seconds = page.open(path.as_uri())
        yield page, seconds
    finally:
        page.close()


def counts(page) -> dict:
    keys = ("stale", "outdated", "errors", "unreachable", "fresh", "skipped")
    shown = page.evaluate("JSON.stringify(Object.fromEntries(%s.map(k => [k, "
                          "document.getElementById('count-' + k).textContent])))" % json.dumps(list(keys)))
    return {key: int(value) for key, value in json.loads(shown).items()}


def visible_rows(page, selector: str) -> int:
    """How many rows matching selector are rendered (not hidden, not in a hidden block)."""
    return page.evaluate(f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
                         ".filter(r => r.checkVisibility()).length")


def set_filter(page, text: str = "", status: str = "all") -> None:
    page.evaluate(f"""(() => {{
        const q = document.getElementById('filter-text'), s = document.getElementById('filter-status');
        q.value = {json.dumps(text)}; q.dispatchEvent(new Event('input'));
        s.value = {json.dumps(status)}; s.dispatchEvent(new Event('change'));
    }})()""")


def network_requests(page, own_url: str) -> list[str]:
    """Every URL the page asked for besides its own document."""
    return [r["request"]["url"] for r in page.requests if r["request"]["url"] != own_url]
