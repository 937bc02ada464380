"""The name an old container carries while its replacement is being tried.

An update renames the old container ``NAME`` to ``NAME.spyglass-old`` before it creates the new
one, and removes it (success) or renames it back (rollback) afterwards. A container with that
suffix in a listing therefore means an update was interrupted part-way: the next ``spyglass
update`` finishes or reverses it, and ``spyglass scan`` reports it. Docker names may hold dots,
and no name docker generates ends this way.
"""
from __future__ import annotations

ASIDE_SUFFIX = ".spyglass-old"


def aside_name(name: str) -> str:
    return name + ASIDE_SUFFIX


def original_name(name: str) -> str | None:
    """The name an aside container had before the update; None for any other container."""
    if name.endswith(ASIDE_SUFFIX) and len(name) > len(ASIDE_SUFFIX):
        return name[:-len(ASIDE_SUFFIX)]
    return None
