"""Pull scopes for the token request, chunked so that one token URL (and the token) stays short."""
from __future__ import annotations

from typing import Iterable

# A combined token grows with its scopes, and it travels in a request header: front ends such as
# nginx refuse header lines over 8 KiB by default. 100 repositories keep both the token URL and the
# token itself under that; a refusal (400/431) still falls back to a single-repository token.
MAX_SCOPES_PER_TOKEN = 100
MAX_SCOPE_CHARS = 4000


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def scope_chunks(repositories: Iterable[str]) -> list[tuple[str, ...]]:
    """Pull scopes for the repositories, in chunks small enough for one token URL each."""
    chunks: list[tuple[str, ...]] = []
    current: list[str] = []
    length = 0
    for repository in sorted(set(repositories)):
        scope = pull_scope(repository)
        if current and (len(current) >= MAX_SCOPES_PER_TOKEN or length + len(scope) > MAX_SCOPE_CHARS):
            chunks.append(tuple(current))
            current, length = [], 0
        current.append(scope)
        length += len(scope) + 7  # "&scope="
    if current:
        chunks.append(tuple(current))
    return chunks
