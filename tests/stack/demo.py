"""A small fleet on the stack's daemon whose right scan answers we know.

    name        image                                  expected
    web-1/2     secure demo/web:1 (shared image)       fresh
    stale       secure demo/stale:1, tag moved later   stale
    private     secure private/app:1 (alice only)      fresh
    plain       plain-http demo/plain:1                fresh
    pinned      secure demo/pinned@sha256:...          skipped pinned-digest
    local-only  plain-http local/only:1, never pushed  skipped no-repo-digest;
                                                       error not-found with the containerd store
    opted-out   watchtower.enable=false label          skipped disabled-by-label
    stopped     created, never started                 skipped not-running
    multi       tag became an index holding our digest fresh
    gone        tag deleted after the start            error not-found

Each case uses its own repository, so deleting or moving one tag cannot
disturb another case.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass

from .distribution import Platform, RegistryHttp
from .fleet import PRIVATE_PREFIX, Stack
from .images import make_image, pull, run_container, untag

OPT_OUT_LABEL = "com.centurylinklabs.watchtower.enable"


@dataclass(frozen=True)
class Expected:
    status: str  # fresh | stale | skipped | error
    reason: str | None = None

    def as_tuple(self) -> tuple[str, str | None]:
        return (self.status, self.reason)


def build_demo_fleet(stack: Stack) -> dict[str, tuple[str, str | None]]:
    """Create the demo containers on the stack's daemon; returns {container name: (status, reason)}."""
    expected: dict[str, Expected] = {}
    with stack.secure_http() as registry:
        for build in (_fresh_public, _stale, _private, _plain, _pinned, _never_pushed, _opted_out,
                      _not_running, _multi_platform, _not_found):
            expected.update(build(stack, registry))
    return {name: value.as_tuple() for name, value in expected.items()}


def _fresh_public(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Two containers sharing one image whose tag has not moved."""
    stack.publish(stack.secure, "demo/web", "1", "web")
    for name in ("web-1", "web-2"):
        run_container(stack.daemon.admin, name, f"{stack.secure.address}/demo/web:1")
    return {"web-1": Expected("fresh"), "web-2": Expected("fresh")}


def _stale(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """The registry's tag moves to a new variant; the daemon's own tag stays where it was."""
    stack.publish(stack.secure, "demo/stale", "1", "stale-old")
    run_container(stack.daemon.admin, "stale", f"{stack.secure.address}/demo/stale:1")
    # Push the new variant under a side tag, forget it locally, then move the tag in the registry only.
    stack.publish(stack.secure, "demo/stale", "next", "stale-new")
    untag(stack.daemon.admin, f"{stack.secure.address}/demo/stale:next")
    registry.copy_tag("demo/stale", "next", "1")
    return {"stale": Expected("stale")}


def _private(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Needs alice's credentials from the docker config; anonymous lookups are refused."""
    stack.publish(stack.secure, f"{PRIVATE_PREFIX}app", "1", "private")
    run_container(stack.daemon.admin, "private", f"{stack.secure.address}/{PRIVATE_PREFIX}app:1")
    return {"private": Expected("fresh")}


def _plain(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    stack.publish(stack.plain, "demo/plain", "1", "plain")
    run_container(stack.daemon.admin, "plain", f"{stack.plain.address}/demo/plain:1")
    return {"plain": Expected("fresh")}


def _pinned(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Run by repo@sha256: there is no tag that could move."""
    _, digest = stack.publish(stack.secure, "demo/pinned", "1", "pinned")
    run_container(stack.daemon.admin, "pinned", f"{stack.secure.address}/demo/pinned@{digest}")
    return {"pinned": Expected("skipped", "pinned-digest")}


def _never_pushed(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Imported locally only, named in a registry of the stack (no lookup ever leaves the machine).

    The classic store records no RepoDigest for it, so nothing is looked up. The containerd image
    store names every image by its manifest digest and cannot tell a never-pushed one from a
    pulled one, so it is looked up, and the registry knows no such tag.
    """
    name = f"{stack.plain.address}/local/only"
    make_image(stack.daemon.admin, name, "1", "local-only")
    run_container(stack.daemon.admin, "local-only", f"{name}:1")
    if stack.image_store == "containerd":
        return {"local-only": Expected("error", "not-found")}
    return {"local-only": Expected("skipped", "no-repo-digest")}


def _opted_out(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    stack.publish(stack.secure, "demo/optout", "1", "opted-out")
    run_container(stack.daemon.admin, "opted-out", f"{stack.secure.address}/demo/optout:1",
                  labels={OPT_OUT_LABEL: "false"})
    return {"opted-out": Expected("skipped", "disabled-by-label")}


def _not_running(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    stack.publish(stack.secure, "demo/idle", "1", "idle")
    run_container(stack.daemon.admin, "stopped", f"{stack.secure.address}/demo/idle:1", start=False)
    return {"stopped": Expected("skipped", "not-running")}


def _multi_platform(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """The tag becomes an index over the running manifest plus another platform's: still fresh."""
    name = f"{stack.secure.address}/demo/multi"
    stack.publish(stack.secure, "demo/multi", "multi", "multi-native")
    untag(stack.daemon.admin, f"{name}:multi")  # so the running image arrives by pull, as in real life
    pull(stack.daemon.admin, name, "multi", stack.alice.auth_config())
    run_container(stack.daemon.admin, "multi", f"{name}:multi")
    native, foreign = _native_and_foreign_platforms()
    native_manifest = registry.describe("demo/multi", "multi")
    foreign_manifest = registry.push_synthetic_image("demo/multi", foreign, f"multi-{foreign.architecture}")
    registry.put_index("demo/multi", "multi", [(native_manifest, native), (foreign_manifest, foreign)])
    return {"multi": Expected("fresh")}


def _not_found(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """The tag is deleted from the registry after the container started."""
    stack.publish(stack.secure, "demo/gone", "1", "gone")
    run_container(stack.daemon.admin, "gone", f"{stack.secure.address}/demo/gone:1")
    registry.delete_tag("demo/gone", "1")
    return {"gone": Expected("error", "not-found")}


def _native_and_foreign_platforms() -> tuple[Platform, Platform]:
    # Images imported on the daemon carry its own architecture, in Go's naming.
    arm64, amd64 = Platform("linux", "arm64", "v8"), Platform("linux", "amd64")
    return (arm64, amd64) if platform.machine() in ("aarch64", "arm64") else (amd64, arm64)
