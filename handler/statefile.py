"""The last delivered fingerprint per run name in a small local file: the CLI's state for NOTIFY=change.

The key is the report's name: a fleet of one is named by its endpoint (as before version 2 of
the report), a fleet by its own name.

The Lambda keeps the same thing in DynamoDB (handler/aws/dynamodb.py); both compare
handler.outcome.fingerprint, so both count the same things as a change.

    {"version": 1, "endpoints": {"tcp://host:2376": {"fingerprint": "...", "delivered_at": 1700000000.0}}}

One file serves every endpoint a user scans (cron jobs per host share it). A write
takes an exclusive lock on a sibling ``.lock`` file, reads, updates its endpoint's entry
and replaces the file atomically (a temporary file in the same folder, flushed, then
renamed over it), so a crash or a second run never leaves half a file. A file that
cannot be read or parsed is treated as "never delivered": a repeated message beats a
lost one; it is said in a warning and replaced on the next delivery.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

from engine.errors import ConfigurationError

log = logging.getLogger("spyglass")

VERSION = 1


def default_path(env: Mapping[str, str], home: Path) -> Path:
    """$XDG_CACHE_HOME/spyglass/state.json, or ~/.cache/spyglass/state.json."""
    cache = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache) if cache and Path(cache).is_absolute() else home / ".cache"
    return base / "spyglass" / "state.json"


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def last(self, endpoint: str) -> str | None:
        """The fingerprint last delivered for endpoint; None when never (or the file is unreadable)."""
        entry = self._read().get(endpoint)
        return entry.get("fingerprint") if isinstance(entry, dict) else None

    def record(self, endpoint: str, fingerprint: str, delivered_at: float) -> None:
        """Store the fingerprint just delivered; ConfigurationError naming the file when it cannot be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                endpoints = self._read()
                endpoints[endpoint] = {"fingerprint": fingerprint, "delivered_at": delivered_at}
                self._replace(json.dumps({"version": VERSION, "endpoints": endpoints}, indent=1, sort_keys=True))
        except OSError as exc:
            raise ConfigurationError(f"write state file {self.path}: {exc.strerror or exc}") from None

    def _read(self) -> dict:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("state file %s cannot be read (%s); treating every endpoint as never notified",
                        self.path, getattr(exc, "strerror", None) or type(exc).__name__)
            return {}
        endpoints = document.get("endpoints") if isinstance(document, dict) else None
        if not isinstance(endpoints, dict):
            log.warning("state file %s is not spyglass state; treating every endpoint as never notified", self.path)
            return {}
        return endpoints

    def _replace(self, text: str) -> None:
        descriptor, temporary = tempfile.mkstemp(prefix=".state-", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # not POSIX: the atomic replace alone
            yield
            return
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
