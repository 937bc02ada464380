"""Deciding one container: is the digest its tag points to now one its image was pulled as?

    remote digest among the image's RepoDigests                → fresh
    remote is an index listing one of those digests            → fresh (a platform of it runs)
    the image has a RepoDigest for this repository, no match   → stale
    the image has RepoDigests only for other repositories      → skipped, no-repo-digest
A digest is content-addressed, so a match under another repository name still
proves the same manifest.

With the containerd image store, the container's ImageID (and the platform manifest
Engine 28 names beside it) counts as a RepoDigest of its configured repository: it is
the manifest or index digest the image was pulled as, so the same rows decide, and
such a container is never skipped for want of a RepoDigest.
"""
from __future__ import annotations

from dataclasses import dataclass

from .daemon import ContainerInfo
from .errors import InvalidReferenceError, SpyglassError
from .name import Reference, parse_repo_digest
from .mediatypes import Descriptor
from .report import ERROR, FRESH, SKIPPED, STALE, ContainerResult


@dataclass(frozen=True)
class Lookup:
    descriptor: Descriptor | None = None
    children: frozenset[str] = frozenset()
    error: SpyglassError | None = None


def local_digests(container: ContainerInfo, reference: Reference | None) -> list[str]:
    """The image's manifest digests, each once; with a reference, only those of its repository
    (the containerd store's own digests are always among them)."""
    digests = []
    for entry in container.repo_digests:
        try:
            parsed = parse_repo_digest(entry)
        except InvalidReferenceError:
            continue  # a daemon's odd entry must not cost the container its check
        if reference is None or parsed.repository_name == reference.repository_name:
            digests.append(parsed.digest)
    return list(dict.fromkeys([*digests, *container.manifest_digests]))


def decide(container: ContainerInfo, reference: Reference, lookup: Lookup) -> ContainerResult:
    for_repo = local_digests(container, reference)
    every = set(local_digests(container, None))
    shown = tuple(for_repo or sorted(every))

    def result(status: str, reason: str | None = None, error: str | None = None) -> ContainerResult:
        remote = lookup.descriptor.digest if lookup.descriptor else None
        return ContainerResult(container.id, container.name, container.image, status, reason,
                               reference=str(reference), registry=reference.registry.name,
                               local_digests=shown, remote_digest=remote, error=error)

    if lookup.error is not None:
        return result(ERROR, lookup.error.reason, str(lookup.error))
    remote = lookup.descriptor.digest
    if remote in every or lookup.children & every:
        return result(FRESH)
    if for_repo:
        return result(STALE)
    return result(SKIPPED, "no-repo-digest")
