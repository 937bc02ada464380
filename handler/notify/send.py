"""Sending one report to every notification URL through Apprise (pip install 'spyglass[notify]').

    for each URL, in order, within one deadline:
      1. Apprise turns the URL into a service (None: a URL it does not know)
      2. its connect and read timeouts are cut to the time left
      3. the message in the richest format the service takes (markdown, which Apprise
         turns into HTML for e-mail, else text), cut to the service's length; the
         generic JSON webhook gets the full JSON report
      4. Apprise's own log lines are kept from the logs (they can hold a URL's
         tokens) and their warnings, redacted, become the failure's reason

A failure never stops the others and never raises: each is an entry of the Outcome,
named by describe() (the URL's place in the list and what is safe to show). Apprise
is imported here only, so a run without URLs never loads it.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from engine.report import Report
from engine.text import one_line

from . import message as msg
from .redact import Redactor, describe, scheme

log = logging.getLogger("spyglass.notify")

JSON_SCHEMES = frozenset({"json", "jsons"})
REASON_LIMIT = 300


@dataclass(frozen=True)
class Failure:
    target: str  # describe(url, index): never the URL itself
    reason: str  # redacted


@dataclass(frozen=True)
class Outcome:
    sent: tuple[str, ...] = ()
    failed: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


class _Capture(logging.Handler):
    """Apprise's log records for the block, none of them reaching our handlers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def load_apprise():
    """The apprise module, or a ConfigurationError saying how to install it."""
    try:
        import apprise
    except ImportError:
        from engine.errors import ConfigurationError
        raise ConfigurationError("notify URLs need Apprise: pip install 'spyglass[notify]'") from None
    return apprise


def send(urls: Sequence[str], report: Report, *, deadline: float, where: str, failure: str | None = None,
         apprise=None, clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Send the report to every URL within ``deadline`` seconds; ``where`` says where the full report is."""
    apprise = apprise or load_apprise()
    redact = Redactor(urls)
    ends = clock() + deadline
    sent, failed = [], []
    for index, url in enumerate(urls, start=1):
        target = describe(url, index)
        left = ends - clock()
        if left <= 0:
            failed.append(Failure(target, "not sent: the notification deadline passed"))
            continue
        reason = _send_one(apprise, url, report, left=left, where=where, failure=failure, redact=redact)
        if reason is None:
            sent.append(target)
            log.info("%s: notified", target)
        else:
            failed.append(Failure(target, reason))  # the caller says it where its user looks
    return Outcome(tuple(sent), tuple(failed))


def _send_one(apprise, url: str, report: Report, *, left: float, where: str, failure: str | None,
              redact: Callable[[str], str]) -> str | None:
    """None when the service took the message, else why not (redacted)."""
    with _apprise_logs() as capture:
        try:
            service = apprise.Apprise.instantiate(url, suppress_exceptions=True)
            if not service:
                return "not a notification URL Apprise knows (see its list of services)"
            service.socket_connect_timeout = min(float(service.socket_connect_timeout), left)
            service.socket_read_timeout = min(float(service.socket_read_timeout), left)
            body_format, message = _message(apprise, service, url, report, where=where, failure=failure)
            took = service.notify(body=message.body, title=message.title, notify_type=message.severity,
                                  body_format=body_format)
        except Exception as exc:  # noqa: BLE001 - a plugin's own failure: this URL fails, the others go on
            return _reason([f"{type(exc).__name__}: {exc}"], redact)
    if took:
        return None
    said = [record.getMessage() for record in capture.records if record.levelno >= logging.WARNING]
    return _reason(said or ["the service did not take the message"], redact)


def _message(apprise, service, url: str, report: Report, *, where: str, failure: str | None):
    """(Apprise body format, Message) for this service."""
    text_format = apprise.NotifyFormat.TEXT
    if scheme(url) in JSON_SCHEMES:
        return text_format, msg.full_report(report, failure=failure)
    formats = service.notify_format
    formats = set(formats) if isinstance(formats, (tuple, list, set, frozenset)) else {formats}
    rich = formats & {apprise.NotifyFormat.MARKDOWN, apprise.NotifyFormat.HTML}
    fmt = msg.MARKDOWN if rich else msg.TEXT
    limit = int(service.body_maxlen or 0)
    if limit > 0 and int(service.title_maxlen or 0) <= 0:  # the title goes into the body
        limit -= len(msg.title(report, failure=failure)) + 2
    body_format = apprise.NotifyFormat.MARKDOWN if rich else text_format
    return body_format, msg.compose(report, fmt, max(limit, 0), where=where, failure=failure)


def _reason(lines: list[str], redact: Callable[[str], str]) -> str:
    return one_line(redact("; ".join(line.strip() for line in lines if line.strip())), REASON_LIMIT)


@contextlib.contextmanager
def _apprise_logs() -> Iterator[_Capture]:
    """Apprise logs URLs and payloads at debug: its records go to the capture only."""
    logger = logging.getLogger("apprise")
    saved = logger.handlers[:], logger.propagate, logger.level
    capture = _Capture()
    logger.handlers[:] = [capture]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
