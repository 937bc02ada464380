"""The last delivered fingerprint per run name in a small local file: NOTIFY=change's state for the CLI
and the Action (which a workflow carries between runs with actions/cache).

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
lost one; it is said in a warning (through ``warn``: the log, or the Action's annotation)
and replaced on the next delivery.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping

from engine.errors import ConfigurationError

log = logging.getLogger("spyglass")

VERSION = 1


def default_path(env: Mapping[str, str], home: Path) -> Path:
    """$XDG_CACHE_HOME/spyglass/state.json, or ~/.cache/spyglass/state.json."""
    cache = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache) if cache and Path(cache).is_absolute() else home / ".cache"
    return base / "spyglass" / "state.json"


class StateFile:
    def __init__(self, path: Path, *, warn: Callable[[str], None] = log.warning) -> None:
        self.path = path
        self._warn = warn

    def last(self, endpoint: str) -> str | None:
        """The fingerprint last delivered for endpoint; None when never (or the file is unreadable)."""
        entry = self._read(warn=True).get(endpoint)
        return entry.get("fingerprint") if isinstance(entry, dict) else None

    def record(self, endpoint: str, fingerprint: str, delivered_at: float) -> None:
        """Store the fingerprint just delivered; ConfigurationError naming the file when it cannot be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                endpoints = self._read(warn=False)  # what last() warned about is replaced here
                endpoints[endpoint] = {"fingerprint": fingerprint, "delivered_at": delivered_at}
                self._replace(json.dumps({"version": VERSION, "endpoints": endpoints}, indent=1, sort_keys=True))
        except OSError as exc:
            raise ConfigurationError(f"write state file {self.path}: {exc.strerror or exc}") from None

    def _read(self, *, warn: bool) -> dict:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            problem = f"cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})"
            document = None
        else:
            problem = "is not spyglass state"
        endpoints = document.get("endpoints") if isinstance(document, dict) else None
        if isinstance(endpoints, dict):
            return endpoints
        if warn:
            self._warn(f"state file {self.path} {problem}; treating every run as never notified (a repeated "
                       "message rather than a lost one)")
        return {}

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


class StateFileStore:
    """A StateFile as handler.notifypolicy's FingerprintStore, for one report delivered at delivered_at."""

    def __init__(self, file: StateFile, *, delivered_at: float) -> None:
        self._file = file
        self._delivered_at = delivered_at

    def last(self, key: str) -> str | None:
        return self._file.last(key)  # an unreadable file: None, and a warning

    def record(self, key: str, fingerprint: str) -> str:
        try:
            self._file.record(key, fingerprint, self._delivered_at)
        except ConfigurationError as exc:  # names the file; what was delivered is still said
            return str(exc)
        return ""
