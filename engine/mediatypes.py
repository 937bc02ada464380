"""Manifest media types and the Accept list that makes a registry answer with the tag's own digest.

A registry that is not told we accept index types resolves a multi-platform tag
to one platform's manifest and returns that child's digest, which would make
every multi-platform image look stale. So the index types come first.
"""
from __future__ import annotations

from dataclasses import dataclass

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def is_index(media_type: str | None) -> bool:
    return (media_type or "").split(";", 1)[0].strip() in INDEX_TYPES


@dataclass(frozen=True)
class Descriptor:
    """What a registry says is behind a tag: the manifest's digest and its media type."""

    digest: str
    media_type: str
