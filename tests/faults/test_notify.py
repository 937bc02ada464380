"""The CLI's notifications end to end: a real scan of the fault fleet (f-stale is stale), sent to real
servers on loopback, with the report still printed and written whatever the services do."""
from __future__ import annotations

import json
import time

import jsonschema
import pytest

from engine.report import schema
from handler.outcome import EXIT_FOUND, EXIT_NOTIFY, EXIT_OK
from tests.notify.servers import Mailbox, Webhooks, body_text, free_port
from tests.reportdoc import containers_of

pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
pytest.importorskip("aiosmtpd", reason="the test extra's SMTP server")

PASSWORD = "Pw-91c2e7-notify-secret"
TOKEN = "hook-4d7a0c13-token"


@pytest.fixture
def hooks():
    with Webhooks() as server:
        yield server


def test_every_service_gets_the_scan_and_a_failing_one_costs_nothing_but_a_line(world, hooks, tmp_path):
    report_file = tmp_path / "report.json"
    with Mailbox() as box:
        mail = (f"mailto://spy:{PASSWORD}@localhost:{box.port}?smtp=127.0.0.1&from=spyglass@example.com"
                "&to=ops@example.com")
        result = world.scan("--log-level", "debug", "--report-file", str(report_file),
                            "--notify", f"json://{hooks.authority}/hooks/{TOKEN}", "--notify", mail,
                            "--notify", f"json://bob:{PASSWORD}@{hooks.authority}/fail/{TOKEN}")
    assert result.code == EXIT_OK, result.stderr
    assert result.outcomes()["f-stale"] == ("stale", None)
    assert json.loads(report_file.read_text()) == result.report
    [hook] = hooks.to(f"/hooks/{TOKEN}")
    sent = json.loads(json.loads(hook.body)["message"])
    jsonschema.validate(sent, schema())
    assert containers_of(sent) == containers_of(result.report)
    [message] = box.messages
    assert message["Subject"].startswith(f"spyglass: {result.report['name']}: 1 stale")
    assert "f-stale" in body_text(message)
    assert f"notify URL 3 (json://{hooks.authority}…): not notified:" in result.stderr and "500" in result.stderr
    everything = result.stdout + result.stderr + report_file.read_text()
    assert PASSWORD not in everything and TOKEN not in everything
    assert "Traceback" not in result.stderr


def test_fail_on_notify_error_exits_4_after_printing_the_report(world, hooks):
    refused = free_port()
    started = time.monotonic()
    result = world.scan("--fail-on-notify-error", "--notify-timeout", "2",
                        "--notify", f"json://127.0.0.1:{refused}/{TOKEN}",
                        "--notify", f"json://{hooks.authority}/slow/{TOKEN}")
    assert result.code == EXIT_NOTIFY, result.stderr
    assert result.report is not None and result.report["summary"]["stale"] == 1
    assert result.stderr.count("not notified") == 2 and TOKEN not in result.stderr
    assert time.monotonic() - started < 30
    # --fail-on-stale's exit 1 wins over a failed notification
    assert world.scan("--fail-on-stale", "--fail-on-notify-error", "--notify",
                      f"json://127.0.0.1:{refused}/x").code == EXIT_FOUND


def test_notify_when_change_sends_once_per_change_and_keeps_state_in_a_file(world, hooks, tmp_path):
    state = tmp_path / "cache" / "state.json"
    args = ("--notify-when", "change", "--state-file", str(state), "--notify", f"json://{hooks.authority}/c")
    assert world.scan(*args).code == EXIT_OK
    assert world.scan(*args).code == EXIT_OK
    assert len(hooks.to("/c")) == 1  # the second scan found the same stale set
    endpoints = json.loads(state.read_text())["endpoints"]
    assert list(endpoints) == [world.scan().report["name"]]
    # A failed delivery is not recorded: the next run tries again.
    failing = tmp_path / "failing.json"
    fail_args = ("--notify-when", "change", "--state-file", str(failing), "--notify", f"json://{hooks.authority}/fail")
    world.scan(*fail_args)
    world.scan(*fail_args)
    assert len(hooks.to("/fail")) == 2 and not failing.exists()


def test_the_default_state_file_is_under_xdg_cache_home(world, hooks, tmp_path):
    env = {**world.stack.env(), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert world.scan("--notify-when", "change", "--notify", f"json://{hooks.authority}/d", env=env).code == EXIT_OK
    assert (tmp_path / "xdg" / "spyglass" / "state.json").is_file()
