"""The report as one self-contained HTML page: `render_html(document) -> str`.

It reads the JSON document (schema_version 2: a fleet of endpoints, each with its containers),
not the dataclasses, so anything holding a report's JSON can render it. The page:

    head     a Content-Security-Policy that forbids every network load (default-src 'none'); the
             inline style and script are allowed by their SHA-256 hashes, nothing else runs
    glance   status and counts (stale, outdated, errors, unreachable endpoints, fresh, skipped),
             scan time and duration
    views    by image (stale or outdated images, where they run, what is proposed), by endpoint
             (one <details> each, open when it needs attention), errors with their reasons,
             requests per registry
    script   filtering, sorting and opening every endpoint before printing; without it the page
             reads the same, only static

Every string from a daemon or a registry goes through engine.text.one_line (control, bidi and
zero-width characters become "?") and then html.escape, so it lands as text in an element or a
quoted attribute. The one JSON island (the header fields the script uses) escapes <, >, & and
the line separators, so no string can close the <script> element or break out of it.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
from datetime import datetime
from itertools import groupby

from .text import one_line

NAME_LIMIT, IMAGE_LIMIT, ERROR_LIMIT = 200, 300, 1000  # characters shown; the JSON report keeps the rest
ATTENTION = "attention"  # the filter token of a row or endpoint that needs looking at
_CONTAINER_ORDER = {"stale": 0, "error": 1, "fresh": 2, "skipped": 3}
_ENDPOINT_ORDER = {"unreachable": 0, "error": 0, "errors": 1, "stale": 2, "ok": 3}
_KNOWN_STATUS = frozenset({"stale", "error", "fresh", "skipped", "ok", "errors", "unreachable", "outdated"})
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})

_STYLE = """
:root{--fg:#1b1b1b;--muted:#4a4a4a;--line:#c8c8c8;--bg:#fff;--stale:#8a4b00;--error:#a4001d;--ok:#1d6b2c;--out:#3f3fa8}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;
padding:1rem 1.25rem 3rem;max-width:82rem}
h1{font-size:1.35rem;margin:.2rem 0}h2{font-size:1.1rem;margin:2rem 0 .5rem;border-bottom:2px solid var(--line)}
p{margin:.3rem 0}.meta{color:var(--muted)}
code,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.92em}
.glance{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0;margin:1rem 0}
.glance li{border:1px solid var(--line);border-left-width:6px;border-radius:4px;padding:.35rem .8rem;min-width:8.5rem}
.glance .n{display:block;font-size:1.6rem;font-weight:700}
.s-stale{border-left-color:var(--stale)!important}.s-error,.s-errors,.s-unreachable{border-left-color:var(--error)!important}
.s-outdated{border-left-color:var(--out)!important}.s-fresh,.s-ok{border-left-color:var(--ok)!important}
.badge{font-weight:700;text-transform:uppercase;font-size:.78em;letter-spacing:.03em;white-space:nowrap}
.b-stale{color:var(--stale)}.b-error,.b-errors,.b-unreachable{color:var(--error)}.b-outdated{color:var(--out)}
.b-fresh,.b-ok{color:var(--ok)}.b-skipped{color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
thead th{background:#f0f0f0;position:sticky;top:0}tbody th{font-weight:600}
th button{font:inherit;font-weight:700;background:none;border:0;padding:0;cursor:pointer;color:inherit;text-align:left}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td ul{margin:0;padding-left:1.1rem}caption{text-align:left}.nw{white-space:nowrap}.nm{min-width:7rem}
details{border:1px solid var(--line);border-left-width:6px;border-radius:4px;margin:.5rem 0;padding:.2rem .7rem;
content-visibility:auto;contain-intrinsic-size:auto 3rem}
section[data-view=image] tbody tr,section[data-view=errors] tbody tr{content-visibility:auto;contain-intrinsic-size:auto 2.5rem}
summary{cursor:pointer;padding:.3rem 0}summary .meta{margin-left:.5rem}
#controls{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end;margin:1rem 0;padding:.6rem;background:#f6f6f6;
border-radius:4px}
#controls label{display:flex;flex-direction:column;font-weight:600}
#controls input,#controls select{font:inherit;padding:.25rem .4rem;min-width:16rem}
[hidden]{display:none!important}
:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}
@media print{body{max-width:none;padding:0;font-size:11px}details,tr{content-visibility:visible!important}#controls{display:none!important}
details{break-inside:auto}details::details-content{content-visibility:visible;display:block}
thead th{position:static}tr{break-inside:avoid}h2{break-after:avoid}}
"""

_SCRIPT = """
(function(){
var d=document,meta=JSON.parse(d.getElementById('report-meta').textContent);
var age=d.getElementById('age'),ms=Date.now()-Date.parse(meta.finished_at);
if(age&&ms>=0){var m=Math.round(ms/60000);
age.textContent=' ('+(m<1?'just now':m<120?m+' min ago':m<2880?Math.round(m/60)+' h ago':Math.round(m/1440)+' days ago')+')';}
var controls=d.getElementById('controls'),q=d.getElementById('filter-text'),st=d.getElementById('filter-status'),
shown=d.getElementById('filter-shown');controls.hidden=false;
function where(el){var det=el.closest('details');return det&&det!==el?det.querySelector('summary').textContent:'';}
function matches(el,text,want){return(!text||(el.textContent+' '+where(el)).toLowerCase().indexOf(text)>=0)&&
(want==='all'||(' '+el.getAttribute('data-status')+' ').indexOf(' '+want+' ')>=0);}
function apply(){var text=q.value.trim().toLowerCase(),want=st.value,n=0,total=0;
d.querySelectorAll('tr[data-status]').forEach(function(tr){var ok=matches(tr,text,want);tr.hidden=!ok;total++;if(ok)n++;});
d.querySelectorAll('details[data-status]').forEach(function(det){var rows=det.querySelectorAll('tr[data-status]');
var any=false;rows.forEach(function(r){if(!r.hidden)any=true;});
det.hidden=!(any||(!rows.length&&matches(det,text,want)));});
d.querySelectorAll('section[data-view]').forEach(function(sec){var rows=sec.querySelectorAll('tr[data-status]');
var any=false;rows.forEach(function(r){if(!r.hidden)any=true;});
var empty=sec.querySelector('.none-shown');if(empty)empty.hidden=any||!rows.length;});
shown.textContent=(text||want!=='all')?n+' of '+total+' rows match':'';}
q.addEventListener('input',apply);st.addEventListener('change',apply);
function key(row,i){var c=row.cells[i];return c?(c.getAttribute('data-sort')||c.textContent.trim()):'';}
d.querySelectorAll('table.sortable thead th').forEach(function(th){var i=th.cellIndex,b=d.createElement('button');b.type='button';
b.textContent=th.textContent;th.textContent='';th.appendChild(b);b.addEventListener('click',function(){
var table=th.closest('table'),body=table.tBodies[0],dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
table.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',dir>0?'ascending':'descending');
Array.prototype.slice.call(body.rows).sort(function(a,b){return dir*key(a,i).localeCompare(key(b,i),undefined,
{numeric:true,sensitivity:'base'});}).forEach(function(r){body.appendChild(r);});});});
var closed=[];
addEventListener('beforeprint',function(){closed=[];d.querySelectorAll('details:not([open])').forEach(function(x){
closed.push(x);x.open=true;});});
addEventListener('afterprint',function(){closed.forEach(function(x){x.open=false;});closed=[];});
})();
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


# What the page may load: nothing from anywhere; its own style and script by hash; the empty
# data: icon that spares a browser asking a web server for /favicon.ico.
CONTENT_SECURITY_POLICY = (f"default-src 'none'; style-src {_sha256(_STYLE)}; script-src {_sha256(_SCRIPT)}; "
                           "img-src data:; base-uri 'none'; form-action 'none'")


def render_html(document: dict) -> str:
    """The page for one report document (schema_version 2)."""
    endpoints = sorted(document.get("endpoints") or (), key=_endpoint_key)
    parts = [_head(document), _glance(document), _controls(), _by_image(endpoints), _by_endpoint(endpoints),
             _errors(endpoints), _registries(document.get("registries") or ()), _tail(document)]
    return "".join(parts)


# -- text in, inert markup out ------------------------------------------------------------

def text(value: object, limit: int = NAME_LIMIT) -> str:
    """Outside text as the content of an element or a quoted attribute: one line, cut, escaped."""
    return html.escape(one_line("" if value is None else str(value), limit), quote=True)


def script_json(value: object) -> str:
    """JSON that stays inside a <script> element whatever its strings hold."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def _status(value: object) -> str:
    """A status as a word for a class name: a known one, else "unknown" (the text shows the real one)."""
    return value if value in _KNOWN_STATUS else "unknown"


def _badge(status: object) -> str:
    return f'<span class="badge b-{_status(status)}">{text(status, 40)}</span>'


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _short(digest: object) -> str:
    return str(digest).split(":", 1)[-1][:12] if digest else ""


def _when(stamp: object) -> str:
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return text(stamp, 40)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(ms: object) -> str:
    ms = _count(ms)
    return f"{ms / 1000:.1f} s" if ms < 120_000 else f"{ms / 60_000:.1f} min"


# -- container facts ---------------------------------------------------------------------

def _newer(container: dict) -> tuple[str, str] | None:
    newer = container.get("newer")
    if not isinstance(newer, dict):
        return None
    for level in ("major", "minor", "patch"):
        if newer.get(level):
            return str(newer[level]), level
    return None


def _tokens(container: dict) -> str:
    """What the filter matches: the status, outdated, and attention for anything to act on."""
    status = _status(container.get("status"))
    tokens = [status] + (["outdated"] if _newer(container) else [])
    if status in ("stale", "error") or _newer(container):
        tokens.append(ATTENTION)
    return " ".join(tokens)


def _detail(container: dict) -> str:
    pieces = []
    cause = ": ".join(str(x) for x in (container.get("reason"), container.get("error")) if x)
    if cause:
        pieces.append(text(cause, ERROR_LIMIT))
    highest = _newer(container)
    if highest:
        pieces.append(f'newer: <span class="mono">{text(highest[0], 80)}</span> ({highest[1]})')
    if container.get("versions_error"):
        pieces.append("versions not checked: " + text(container["versions_error"], ERROR_LIMIT))
    if container.get("status") == "stale" and container.get("remote_digest"):
        pieces.append(f'tag now points to <span class="mono">{text(_short(container["remote_digest"]))}</span>')
    action = container.get("action")
    if isinstance(action, dict) and action:
        pieces.append("action: " + text(" ".join(str(v) for v in action.values() if isinstance(v, (str, int))),
                                         ERROR_LIMIT))
    return "; ".join(pieces)


def _container_key(container: dict):
    return (_CONTAINER_ORDER.get(container.get("status"), 4), str(container.get("name", "")))


def _endpoint_key(endpoint: dict):
    return (_ENDPOINT_ORDER.get(endpoint.get("status"), 0), str(endpoint.get("name", "")))


def _endpoint_label(endpoint: dict) -> str:
    return str(endpoint.get("name") or endpoint.get("endpoint") or "?")


# -- the page -------------------------------------------------------------------------------

def _head(document: dict) -> str:
    name = text(document.get("name") or "spyglass report")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
            '<meta name="referrer" content="no-referrer"><meta name="viewport" content="width=device-width,'
            'initial-scale=1"><meta name="color-scheme" content="light"><link rel="icon" href="data:,">'
            f'<title>spyglass: {name}: {text(document.get("status"), 40)}</title><style>{_STYLE}</style></head>'
            f'<body><header><h1>spyglass: {name}</h1>')


def _glance(document: dict) -> str:
    summary = document.get("summary") or {}
    endpoints = _count(summary.get("endpoints"))
    tiles = (("stale", "stale", "stale"), ("outdated", "outdated", "outdated"), ("errors", "errors", "error"),
             ("unreachable", f"unreachable of {endpoints} endpoint{'s' if endpoints != 1 else ''}", "unreachable"),
             ("fresh", "fresh", "fresh"), ("skipped", "skipped", "skipped"))
    items = "".join(f'<li class="s-{css}"><span class="n" id="count-{key}">{_count(summary.get(key))}</span> '
                    f'{label}</li>' for key, label, css in tiles)
    scanned = _count(summary.get("scanned"))
    return (f'<p>Status: {_badge(document.get("status"))} &middot; {scanned} container'
            f'{"s" if scanned != 1 else ""} scanned on {endpoints} endpoint{"s" if endpoints != 1 else ""}</p>'
            f'<p class="meta">Scanned <time datetime="{text(document.get("started_at"), 40)}">'
            f'{_when(document.get("started_at"))}</time><span id="age"></span>, in '
            f'<span id="duration">{_seconds(document.get("duration_ms"))}</span></p></header>'
            f'<main><h2 id="glance">At a glance</h2><ul class="glance" aria-label="counts">{items}</ul>')


def _controls() -> str:
    options = (("all", "everything"), (ATTENTION, "needs attention"), ("stale", "stale"), ("outdated", "outdated"),
               ("error", "errors"), ("fresh", "fresh"), ("skipped", "skipped"))
    choices = "".join(f'<option value="{value}">{label}</option>' for value, label in options)
    return ('<div id="controls" role="search" hidden><label for="filter-text">Filter (container, image, host, '
            'reason)<input id="filter-text" type="search" autocomplete="off"></label>'
            f'<label for="filter-status">Show<select id="filter-status">{choices}</select></label>'
            '<span id="filter-shown" role="status" aria-live="polite"></span></div>')


def _table(caption: str, columns: tuple[str, ...], rows: list[str], *, sortable: bool = True) -> str:
    head = "".join(f'<th scope="col">{column}</th>' for column in columns)
    kind = ' class="sortable"' if sortable else ""
    return (f'<table{kind}><caption class="meta">{caption}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _section(view: str, title: str, body: str) -> str:
    return (f'<section data-view="{view}" aria-labelledby="view-{view}"><h2 id="view-{view}">{title}</h2>{body}'
            '<p class="none-shown meta" hidden>Nothing here matches the filter.</p></section>')


def _by_image(endpoints: list[dict]) -> str:
    """Each stale or outdated image once, with every place it runs."""
    found = [(endpoint, c) for endpoint in endpoints for c in endpoint.get("containers") or ()
             if c.get("status") == "stale" or _newer(c)]
    image_of = lambda pair: str(pair[1].get("image", ""))  # noqa: E731
    groups = [(image, list(members)) for image, members in groupby(sorted(found, key=image_of), key=image_of)]
    groups.sort(key=lambda g: (not any(c.get("status") == "stale" for _, c in g[1]), -len(g[1]), g[0]))
    rows = [_image_row(image, members) for image, members in groups]
    if not rows:
        return _section("image", "By image", "<p>No image is stale or behind a newer version.</p>")
    columns = ("Image", "State", "Proposed", "Containers", "Where it runs")
    caption = f"{len(rows)} image{'s' if len(rows) != 1 else ''} stale or behind a newer version"
    return _section("image", "By image", _table(caption, columns, rows))


def _image_row(image: str, members: list[tuple[dict, dict]]) -> str:
    containers = [c for _, c in members]
    stale = any(c.get("status") == "stale" for c in containers)
    highest = max((_newer(c) for c in containers if _newer(c)), key=_level_rank, default=None)
    states = (["stale"] if stale else []) + (["outdated"] if highest else [])
    proposed = []
    if highest:
        proposed.append(f'<span class="mono">{text(highest[0], 80)}</span> ({highest[1]})')
    if stale:
        digest = next((_short(c.get("remote_digest")) for c in containers if c.get("remote_digest")), "")
        proposed.append(f'same tag, now <span class="mono">{text(digest)}</span>' if digest else "same tag, moved")
    places = "".join(f"<li>{text(_endpoint_label(endpoint))}: {text(c.get('name'))}</li>" for endpoint, c in members)
    tokens = " ".join(states + [ATTENTION])
    return (f'<tr data-status="{tokens}"><th scope="row" class="mono">{text(image, IMAGE_LIMIT)}</th>'
            f'<td>{" ".join(_badge(s) for s in states)}</td><td>{"; ".join(proposed)}</td>'
            f'<td data-sort="{len(members)}">{len(members)}</td><td><ul>{places}</ul></td></tr>')


def _level_rank(newer: tuple[str, str]) -> int:
    return {"patch": 0, "minor": 1, "major": 2}.get(newer[1], 0)


def _by_endpoint(endpoints: list[dict]) -> str:
    blocks = "".join(_endpoint_block(endpoint) for endpoint in endpoints) or "<p>No endpoint in this report.</p>"
    return _section("endpoint", "By endpoint", blocks)


def _endpoint_block(endpoint: dict) -> str:
    status = endpoint.get("status")
    summary = endpoint.get("summary") or {}
    counts = ", ".join(f"{_count(summary.get(key))} {word if _count(summary.get(key)) == 1 and key == 'errors' else key}"
                       for key, word in (("stale", ""), ("outdated", ""), ("errors", "error"), ("fresh", ""),
                                         ("skipped", "")) if _count(summary.get(key)))
    containers = sorted(endpoint.get("containers") or (), key=_container_key)
    problem = status in ("unreachable", "error")
    tokens = " ".join([_status(status)] + (["error", ATTENTION] if problem else
                                           [ATTENTION] if status in ("stale", "errors") else []))
    opened = " open" if status != "ok" else ""
    address = endpoint.get("endpoint")
    where = f' &middot; <span class="mono">{text(address, IMAGE_LIMIT)}</span>' if address != _endpoint_label(endpoint) else ""
    body = ""
    if problem:
        cause = ": ".join(str(x) for x in (endpoint.get("reason"), endpoint.get("error")) if x) or "no reason given"
        body = f"<p>Not scanned: {text(cause, ERROR_LIMIT)}</p>"
    if containers:
        columns = ("Status", "Container", "Image", "Detail", "Local", "Remote")
        body += _table(f"{len(containers)} container{'s' if len(containers) != 1 else ''} on "
                       f"{text(_endpoint_label(endpoint))}", columns, [_container_row(c) for c in containers])
    elif not problem:
        body = "<p>No containers matched.</p>"
    api = f" &middot; API {text(endpoint.get('api_version'), 20)}" if endpoint.get("api_version") else ""
    return (f'<details class="s-{_status(status)}" data-status="{tokens}"{opened}><summary>'
            f'<strong>{text(_endpoint_label(endpoint))}</strong> {_badge(status)}'
            f'<span class="meta">{counts or "nothing scanned"}{where}{api}</span>'
            f'</summary>{body}</details>')


def _container_row(c: dict) -> str:
    locals_ = c.get("local_digests") or ()
    local = "<br>".join(text(_short(d)) for d in list(locals_)[:2]) + ("…" if len(locals_) > 2 else "")
    order = _CONTAINER_ORDER.get(c.get("status"), 4)
    return (f'<tr data-status="{_tokens(c)}"><td data-sort="{order}">{_badge(c.get("status"))}'
            f'{" " + _badge("outdated") if _newer(c) else ""}</td><th scope="row" class="nm">{text(c.get("name"))}</th>'
            f'<td class="mono">{text(c.get("image"), IMAGE_LIMIT)}</td><td>{_detail(c)}</td>'
            f'<td class="mono nw">{local}</td><td class="mono nw">{text(_short(c.get("remote_digest")))}</td></tr>')


def _errors(endpoints: list[dict]) -> str:
    rows = []
    for endpoint in endpoints:
        label = text(_endpoint_label(endpoint))
        if endpoint.get("status") in ("unreachable", "error"):
            rows.append(f'<tr data-status="error {ATTENTION}"><td>{label}</td><td>(the endpoint)</td><td></td>'
                        f'<td class="nw">{text(endpoint.get("reason") or endpoint.get("status"), 80)}</td>'
                        f'<td>{text(endpoint.get("error"), ERROR_LIMIT)}</td></tr>')
        for c in sorted(endpoint.get("containers") or (), key=_container_key):
            if c.get("status") == "error":
                rows.append(f'<tr data-status="{_tokens(c)}"><td>{label}</td><td>{text(c.get("name"))}</td>'
                            f'<td class="mono">{text(c.get("image"), IMAGE_LIMIT)}</td>'
                            f'<td class="nw">{text(c.get("reason"), 80)}</td><td>{text(c.get("error"), ERROR_LIMIT)}</td></tr>')
    if not rows:
        return _section("errors", "Errors", "<p>No errors: every endpoint was listed and every container "
                                            "checked.</p>")
    columns = ("Endpoint", "Container", "Image", "Reason", "Message")
    return _section("errors", "Errors", _table(f"{len(rows)} error{'s' if len(rows) != 1 else ''}", columns, rows))


def _registries(registries) -> str:
    rows = []
    for registry in registries:
        requests = registry.get("requests") or {}
        total = sum(_count(v) for v in requests.values())
        kinds = ", ".join(f"{text(kind, 20)} {_count(n)}" for kind, n in sorted(requests.items()))
        limit = ", ".join(f"{text(k, 60)}: {text(v, 60)}" for k, v in sorted((registry.get("rate_limit") or {}).items()))
        rows.append(f'<tr><td class="mono">{text(registry.get("name"))}</td><td data-sort="{total}">{total}</td>'
                    f'<td>{kinds}</td><td>{limit}</td></tr>')
    if not rows:
        return ""
    table = _table("requests this scan made", ("Registry", "Requests", "By kind", "Rate limit"), rows)
    return f'<section aria-labelledby="view-registries"><h2 id="view-registries">Registries</h2>{table}</section>'


def _tail(document: dict) -> str:
    meta = {key: document.get(key) for key in ("schema_version", "name", "status", "started_at", "finished_at",
                                               "duration_ms", "summary")}
    return (f'</main><footer class="meta"><p>spyglass report, schema version {text(document.get("schema_version"), 8)}'
            f'; finished {_when(document.get("finished_at"))}. The JSON report holds every field.</p></footer>'
            f'<script type="application/json" id="report-meta">{script_json(meta)}</script>'
            f'<script>{_SCRIPT}</script></body></html>\n')
