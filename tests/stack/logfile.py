"""Reading a service's log from a mark, so a test can count what one operation caused.

A mark is a byte offset at a line boundary: a line still being written when the
mark is taken belongs to the part after it, never half to each side.
"""
from __future__ import annotations

from pathlib import Path


def mark(path: Path) -> int:
    data = _read(path, 0)
    return data.rfind(b"\n") + 1


def lines_since(path: Path, offset: int = 0) -> list[str]:
    """Complete lines written after `offset` (a trailing partial line is left for later)."""
    data = _read(path, offset)
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", errors="replace").splitlines()


def _read(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""
