"""spyglass's version, read from the installed package's metadata.

pyproject.toml is the one place the version is written. An install (wheel, editable, or the
Lambda zip, which carries a generated dist-info) answers from its metadata; sources put on
sys.path without any install say so with a local version label instead of guessing.
"""
from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "spyglass"
NOT_INSTALLED = "0+unknown"  # a valid PEP 440 version that sorts below every release


def installed_version(distribution: str = DISTRIBUTION) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


__version__ = installed_version()


def user_agent() -> str:
    """The User-Agent spyglass sends to registries and token servers."""
    return f"spyglass/{__version__}"
