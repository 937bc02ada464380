"""Sending one report to every notification URL through Apprise (pip install 'spyglass[notify]').

    every URL at once (a thread each, up to MAX_PARALLEL), all within one deadline:
      1. Apprise turns the URL into a service (None: a URL it does not know)
      2. its connect and read timeouts are cut to the deadline; a send still running when
         the deadline passes is a failure ("no answer within ..."), its thread ends with
         its socket's timeout
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
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from engine.report import Report
from engine.text import one_line

from . import message as msg
from .redact import Redactor, describe, scheme

log = logging.getLogger("spyglass.notify")

JSON_SCHEMES = frozenset({"json", "jsons"})
REASON_LIMIT = 300
MAX_PARALLEL = 8


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
        self.records.append(record)  # list.append is atomic: the senders' threads share it


def load_apprise():
    """The apprise module, or a ConfigurationError saying how to install it."""
    try:
        import apprise
    except ImportError:
        from engine.errors import ConfigurationError
        raise ConfigurationError("notify URLs need Apprise: pip install 'spyglass[notify]'") from None
    return apprise


def send(urls: Sequence[str], report: Report, *, deadline: float, where: str, failure: str | None = None,
         apprise=None, link: str = "") -> Outcome:
    """Send the report to every URL within ``deadline`` seconds; ``where`` says where the full report is,
    ``link`` leads each body (the HTML report's presigned link, when the Lambda stored it)."""
    apprise = apprise or load_apprise()
    redact = Redactor(urls)
    targets = [describe(url, index) for index, url in enumerate(urls, start=1)]
    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(urls)) or 1, thread_name_prefix="spyglass-notify")
    with _apprise_logs() as capture:
        try:
            futures = [pool.submit(_send_one, apprise, url, report, capture, left=deadline, where=where,
                                   failure=failure, redact=redact, link=link) for url in urls]
            wait(futures, timeout=deadline)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    sent, failed = [], []
    for target, future in zip(targets, futures):
        if not future.done():
            failed.append(Failure(target, f"no answer within the notification deadline ({deadline:g} s)"))
        elif future.result() is None:
            sent.append(target)
            log.info("%s: notified", target)
        else:
            failed.append(Failure(target, future.result()))  # the caller says it where its user looks
    return Outcome(tuple(sent), tuple(failed))


def _send_one(apprise, url: str, report: Report, capture: "_Capture", *, left: float, where: str,
              failure: str | None, redact: Callable[[str], str], link: str = "") -> str | None:
    """None when the service took the message, else why not (redacted)."""
    thread = threading.get_ident()
    try:
        service = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if not service:
            return "not a notification URL Apprise knows (see its list of services)"
        service.socket_connect_timeout = min(float(service.socket_connect_timeout), left)
        service.socket_read_timeout = min(float(service.socket_read_timeout), left)
        body_format, message = _message(apprise, service, url, report, where=where, failure=failure, link=link)
        took = service.notify(body=message.body, title=message.title, notify_type=message.severity,
                              body_format=body_format)
    except Exception as exc:  # noqa: BLE001 - a plugin's own failure: this URL fails, the others go on
        return _reason([f"{type(exc).__name__}: {exc}"], redact)
    if took:
        return None
    said = [record.getMessage() for record in capture.records
            if record.levelno >= logging.WARNING and record.thread == thread]
    return _reason(said or ["the service did not take the message"], redact)


def _message(apprise, service, url: str, report: Report, *, where: str, failure: str | None, link: str = ""):
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
    return body_format, msg.compose(report, fmt, max(limit, 0), where=where, failure=failure, link=link)


def _reason(lines: list[str], redact: Callable[[str], str]) -> str:
    return one_line(redact("; ".join(line.strip() for line in lines if line.strip())), REASON_LIMIT)


@contextlib.contextmanager
def _apprise_logs() -> Iterator[_Capture]:
    """Apprise logs URLs, headers and payloads: its records go to the capture only.

    Its logger stops propagating for the rest of the process, with a NullHandler so that
    logging's last-resort handler does not print what a send still running after the
    deadline says once the capture is gone.
    """
    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.DEBUG)
    capture = _Capture()
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
