"""Run the scanner against the demo fleet: `python -m tests.stack.sandbox [extra scan args]`.

Starts the stack, builds the demo fleet, prints the expected statuses and the
scan command on stderr, runs `spyglass scan --output text` (the script beside this
interpreter, or `python -m handler.cli scan` when it is not installed) with
extra arguments passed through, and exits with the scan's exit code. The stack
is stopped whatever happens, Ctrl-C and SIGTERM included.
"""
from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from .demo import build_demo_fleet
from .fleet import Stack
from .procs import stopped_however_it_ends

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_NO_SCANNER = 127  # what a shell answers for a command it cannot find


def main(argv: list[str] | None = None) -> int:
    extra = sys.argv[1:] if argv is None else argv
    workdir = Path(tempfile.mkdtemp(prefix="spyglass-sandbox-"))
    stack = Stack()

    def stop() -> None:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    try:
        with stopped_however_it_ends(stop):
            return _run(stack, workdir, extra)
    except KeyboardInterrupt:
        _say("interrupted; the stack is stopped")
        return 130


def _run(stack: Stack, workdir: Path, extra: list[str]) -> int:
    started = time.monotonic()
    stack.start(workdir)
    expected = build_demo_fleet(stack)
    _say(f"stack and demo fleet ready in {time.monotonic() - started:.1f}s; expected statuses:")
    for name, (status, reason) in sorted(expected.items()):
        _say(f"  {name:<12} {status}" + (f" ({reason})" if reason else ""))
    command = scanner_command() + ["scan", "--output", "text", *stack.scan_args(), *extra]
    env = stack.env()
    _say("scan command: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(command))
    if not _scanner_available(command):
        _say("the spyglass CLI is not available yet (no `spyglass` script, no handler/cli.py); not scanning")
        return EXIT_NO_SCANNER
    return subprocess.run(command, env=os.environ | env, cwd=REPO_ROOT, check=False).returncode


def scanner_command() -> list[str]:
    """The `spyglass` script installed beside this interpreter (the virtual environment's), else
    `python -m handler.cli`; never one found on PATH, which may belong to another installation."""
    script = Path(sysconfig.get_path("scripts")) / "spyglass"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "handler.cli"]


def _scanner_available(command: list[str]) -> bool:
    if command[0] != sys.executable:
        return True
    sys.path.insert(0, str(REPO_ROOT))
    try:
        return importlib.util.find_spec("handler.cli") is not None
    except ModuleNotFoundError:
        return False
    finally:
        sys.path.remove(str(REPO_ROOT))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
