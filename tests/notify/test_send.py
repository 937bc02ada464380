"""Apprise sending to real servers on loopback: the JSON and form webhooks, Mattermost's and ntfy's
formats at a local host, e-mail to an SMTP server; and the failures: 500, refused, never answering."""
import io
import json
import logging
import time
import urllib.parse

import jsonschema
import pytest

from engine.report import ContainerResult, Report, schema
from handler import logs
from handler.notify import send

from .servers import Mailbox, Webhooks, body_text, free_port

pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
pytest.importorskip("aiosmtpd", reason="the test extra's SMTP server")

PASSWORD = "Pw-7f3a9c-secret"
TOKEN = "tok-5b1e0d9a-path"


def _report():
    return Report.single("tcp://docker-1.example:2376", 1_700_000_000.0, 1_700_000_003.0, (
        ContainerResult("a1", "web-1", "nginx:1.27", "stale", reference="docker.io/library/nginx:1.27",
                        local_digests=("sha256:" + "11" * 32,), remote_digest="sha256:" + "22" * 32),
        ContainerResult("a2", "web-2", "nginx:1.27", "stale", reference="docker.io/library/nginx:1.27",
                        local_digests=("sha256:" + "11" * 32,), remote_digest="sha256:" + "22" * 32),
        ContainerResult("b1", "db", "postgres:16", "fresh", local_digests=("sha256:" + "33" * 32,),
                        remote_digest="sha256:" + "33" * 32),
        ContainerResult("c1", "private", "registry.example/team/app:2", "error", reason="unauthorized",
                        error="registry.example: 401"),
    ))


@pytest.fixture
def hooks():
    with Webhooks() as server:
        yield server


@pytest.fixture
def debug_log():
    """Everything spyglass and its libraries log at debug, as --log-level debug would."""
    stream = io.StringIO()
    logs.configure("debug", "text", stream=stream)
    yield stream
    logging.getLogger().handlers[:] = []


def test_the_json_webhook_receives_the_full_report_valid_against_the_schema(hooks):
    outcome = send([f"json://{hooks.authority}/hooks/{TOKEN}"], _report(), deadline=10, where="w")
    assert outcome.ok and len(outcome.sent) == 1
    [request] = hooks.to(f"/hooks/{TOKEN}")
    payload = json.loads(request.body)
    assert payload["title"] == "spyglass: tcp://docker-1.example:2376: 2 stale, 1 error (4 containers)"
    assert payload["type"] == "failure"
    document = json.loads(payload["message"])
    jsonschema.validate(document, schema())
    assert document["summary"] == {"endpoints": 1, "unreachable": 0, "scanned": 4, "stale": 2, "fresh": 1, "skipped": 0, "errors": 1, "outdated": 0}


def test_the_form_webhook_receives_the_markdown_body(hooks):
    assert send([f"form://{hooks.authority}/form"], _report(), deadline=10, where="w").ok
    [request] = hooks.to("/form")
    form = dict(urllib.parse.parse_qsl(request.body.decode()))
    assert form["title"].startswith("spyglass: tcp://docker-1.example:2376: 2 stale")
    assert form["message"].splitlines()[:2] == ["**Stale (2)**", "- nginx:1.27: web-1, web-2 (the tag now points "
                                                                 "to 222222222222)"]
    assert "- private (registry.example/team/app:2): unauthorized: registry.example: 401" in form["message"]


def test_a_chat_service_at_a_local_host_gets_its_own_format(hooks):
    # Mattermost's incoming webhook (Slack's format: {"text": ...}) and ntfy, both at a host of our choosing.
    urls = [f"mmost://{hooks.authority}/{TOKEN}", f"ntfy://{hooks.authority}/spyglass-topic"]
    assert send(urls, _report(), deadline=10, where="w").ok
    [chat] = hooks.to(f"/hooks/{TOKEN}")
    text = json.loads(chat.body)["text"]
    assert "2 stale, 1 error" in text and "- nginx:1.27: web-1, web-2" in text and "**" not in text
    [push] = [r for r in hooks.requests if r.path.startswith("/spyglass-topic") or r.path == "/"]
    assert b"web-1, web-2" in push.body


def test_an_email_arrives_with_the_counts_as_subject_and_the_list_as_body():
    with Mailbox() as box:
        url = (f"mailto://alice:{PASSWORD}@localhost:{box.port}?smtp=127.0.0.1&from=spyglass@example.com"
               "&to=ops@example.com&mode=insecure")
        assert send([url], _report(), deadline=10, where="w").ok
    [mail] = box.messages
    assert mail["Subject"] == "spyglass: tcp://docker-1.example:2376: 2 stale, 1 error (4 containers)"
    assert mail["To"] == "ops@example.com"
    body = body_text(mail)
    assert "nginx:1.27: web-1, web-2" in body and "unauthorized" in body
    assert box.logins == [("alice", PASSWORD)]  # the URL's password was used, and only there


def test_failures_are_each_named_without_secrets_and_the_rest_still_sent(hooks, debug_log):
    refused = free_port()
    urls = [f"json://bob:{PASSWORD}@{hooks.authority}/fail/{TOKEN}",
            f"jsons://bob:{PASSWORD}@127.0.0.1:{refused}/{TOKEN}",
            f"json://{hooks.authority}/ok/{TOKEN}",
            f"unknownscheme://{PASSWORD}/{TOKEN}"]
    outcome = send(urls, _report(), deadline=10, where="w")
    assert outcome.sent == (f"notify URL 3 (json://{hooks.authority}…)",)
    assert [f.target for f in outcome.failed] == [f"notify URL 1 (json://{hooks.authority}…)",
                                                  f"notify URL 2 (jsons://127.0.0.1:{refused}…)",
                                                  "notify URL 4 (unknownscheme://…)"]
    reasons = [f.reason for f in outcome.failed]
    assert "500" in reasons[0] and "connection" in reasons[1].lower() and "Apprise knows" in reasons[2]
    shown = repr(outcome) + debug_log.getvalue()
    assert PASSWORD not in shown and TOKEN not in shown
    assert "notify URL 3" in debug_log.getvalue()  # the debug log was on


def test_a_server_that_never_answers_is_bounded_by_the_deadline(hooks):
    urls = [f"json://{hooks.authority}/slow/{TOKEN}", f"json://{hooks.authority}/slow/2", f"json://{hooks.authority}/ok"]
    started = time.monotonic()
    outcome = send(urls, _report(), deadline=1.5, where="w")
    took = time.monotonic() - started
    assert took < 3, took
    assert outcome.sent == (f"notify URL 3 (json://{hooks.authority}…)",)  # the slow ones hold nobody up
    assert len(outcome.failed) == 2
    assert all(TOKEN not in f.reason for f in outcome.failed)


def test_a_long_report_is_cut_to_the_service_s_length_with_a_pointer(hooks):
    many = tuple(ContainerResult(f"s{i}", f"svc-{i:03}", f"registry.example/team/image-{i:03}:1", "stale",
                                 remote_digest="sha256:" + "44" * 32) for i in range(300))
    report = Report.single("tcp://big:2376", 0.0, 1.0, many)
    assert send([f"mmost://{hooks.authority}/{TOKEN}"], report, deadline=10, where="/srv/last.json").ok
    [chat] = hooks.to(f"/hooks/{TOKEN}")
    text = json.loads(chat.body)["text"]
    assert len(text) <= 4000  # Mattermost's limit in Apprise, title included
    assert text.rstrip().splitlines()[-1].startswith("… ") and "/srv/last.json" in text
    assert "svc-000" in text and "svc-299" not in text


def test_without_apprise_a_url_is_a_configuration_error_saying_how_to_install(monkeypatch):
    import sys

    from engine.errors import ConfigurationError
    from handler.notify import load_apprise

    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'spyglass\[notify\]'"):
        load_apprise()
