"""Logging set-up for the entry points: text for people, one JSON object per line for machines."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Callable, Sequence

from engine.errors import scrub
from handler.notify.redact import Redactor

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _as_is(text: str) -> str:
    return text


class JsonFormatter(logging.Formatter):
    """One line per event; extra= fields (endpoint, correlation id...) become keys."""

    def __init__(self, static: dict | None = None, redact: Callable[[str], str] = _as_is):
        super().__init__()
        self._static = dict(static or {})
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
            **self._static,
        }
        event.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info and record.levelno >= logging.DEBUG:
            event["exception"] = scrub(self.formatException(record.exc_info))
        return self._redact(json.dumps(event, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Callable[[str], str] = _as_is):
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(scrub(super().format(record)))


def configure(level: str = "warning", fmt: str = "text", *, stream=None, static: dict | None = None,
              secret_urls: Sequence[str] = ()) -> None:
    """Logging for an entry point; every line is cleaned of the secrets of ``secret_urls`` (the
    notify URLs: whatever library logs a request, a token in its path never reaches the log)."""
    redact = Redactor(secret_urls) if secret_urls else _as_is
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(static, redact) if fmt == "json" else TextFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
    # These libraries log request lines, parameters and response bodies at debug: query strings,
    # DynamoDB items holding tokens, Secrets Manager values holding private keys. Keep them at info.
    # Apprise's requests carry notification URLs, whose paths and headers are tokens.
    for noisy in ("urllib3", "docker", "botocore", "boto3", "s3transfer", "requests", "requests_oauthlib",
                  "oauthlib"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.INFO))
