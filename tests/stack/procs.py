"""Child processes of the stack: started with a log file, stopped by pid, never by name.

Every service runs in its own session so that a Ctrl-C in the terminal reaches
only the Python process; the stack then stops the children in its own order
(containers before the daemon), instead of all of them racing at once.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A piece of the test stack failed to start, answer or stop."""


@contextlib.contextmanager
def stopped_however_it_ends(stop: Callable[[], None]) -> Iterator[None]:
    """Run the block, then `stop()` however it ended.

    A SIGTERM ends the block as Ctrl-C does (KeyboardInterrupt, for the caller to
    catch), and while `stop()` runs a second signal cannot cut it short: each of
    the stack's stop steps has its own timeout. The handlers are restored after.
    """
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@dataclass(frozen=True)
class Child:
    """A started process: its pid, its Popen (for reaping) and where it logs."""

    argv: tuple[str, ...]
    pid: int
    log: Path
    popen: subprocess.Popen

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, *, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit status."""
        if self.alive():
            _signal(self.pid, signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal(self.pid, signal.SIGKILL)
        return self.popen.wait(timeout=timeout)


def start(argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
          stdout_log: Path | None = None) -> Child:
    """Start `argv` with stderr (and stdout, unless `stdout_log` separates it) appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err, open(stdout_log or log, "ab") as out:
        popen = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            env=env, start_new_session=True, close_fds=True,
        )
    return Child(argv=tuple(argv), pid=popen.pid, log=log, popen=popen)


def free_port() -> int:
    """A port free right now; the small race until the service binds it is accepted."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], bool], *, what: str, child: Child, timeout: float) -> None:
    """Poll `ready` until it holds; fail early if the child died, with its log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not child.alive():
            raise StackError(f"start {what}: exited with {child.popen.returncode}\n{tail(child.log)}")
        time.sleep(0.1)
    raise StackError(f"start {what}: not ready after {timeout:.0f}s\n{tail(child.log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def pids_with_arg(needle: str) -> list[int]:
    """Pids whose command line contains `needle` (a path unique to one of our services)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue  # exited while we looked
        if needle.encode() in cmdline:
            found.append(int(entry.name))
    return found


def kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
