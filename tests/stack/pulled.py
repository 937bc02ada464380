"""After the demo fleet: images pulled again without recreating the containers that run them.

    name            what happened                                          expected
    moved           pulled by tag; the tag moved in the registry and was   stale
                    pulled again (the container runs the old image)
    moved-new       created after that pull, on the new image              fresh
    repointed       pulled by tag; the local tag then re-pointed to an     fresh
                    image never pushed (the registry did not move)
    repointed-new   created on the re-pointed tag                          skipped no-repo-digest,
                                                                           stale with the containerd store
    multi-new       created after pulling `multi` again, now an index      fresh

The last two differ by store for a reason: the classic store records a repository digest only for
what was pushed or pulled, while the containerd store names every image by its manifest digest, so
a never-pushed image tagged into a repository is simply a different manifest from the registry's.
"""
from __future__ import annotations

from .demo import Expected
from .fleet import Stack
from .images import make_image, pull, run_container, untag


def pull_without_recreate(stack: Stack) -> dict[str, tuple[str, str | None]]:
    """Build the phase on top of the demo fleet; returns {container name: (status, reason)}."""
    expected: dict[str, Expected] = {}
    with stack.secure_http() as registry:
        expected.update(_moved(stack, registry))
    expected.update(_repointed(stack))
    expected.update(_multi_again(stack))
    return {name: value.as_tuple() for name, value in expected.items()}


def _pulled_and_run(stack: Stack, repository: str, tag: str, variant: str, container: str) -> str:
    """Publish, forget locally, pull by tag and run: an image as a user's daemon gets it."""
    name = f"{stack.secure.address}/{repository}"
    stack.publish(stack.secure, repository, tag, variant)
    untag(stack.daemon.admin, f"{name}:{tag}")
    pull(stack.daemon.admin, name, tag, stack.alice.auth_config())
    run_container(stack.daemon.admin, container, f"{name}:{tag}")
    return name


def _moved(stack: Stack, registry) -> dict[str, Expected]:
    name = _pulled_and_run(stack, "pulled/moved", "1", "moved-old", "moved")
    stack.publish(stack.secure, "pulled/moved", "next", "moved-new")
    untag(stack.daemon.admin, f"{name}:next")
    registry.copy_tag("pulled/moved", "next", "1")
    pull(stack.daemon.admin, name, "1", stack.alice.auth_config())
    run_container(stack.daemon.admin, "moved-new", f"{name}:1")
    return {"moved": Expected("stale"), "moved-new": Expected("fresh")}


def _repointed(stack: Stack) -> dict[str, Expected]:
    name = _pulled_and_run(stack, "pulled/repointed", "1", "repointed", "repointed")
    make_image(stack.daemon.admin, name, "1", "repointed-local")  # the import takes the tag over
    run_container(stack.daemon.admin, "repointed-new", f"{name}:1")
    new = Expected("stale") if stack.image_store == "containerd" else Expected("skipped", "no-repo-digest")
    return {"repointed": Expected("fresh"), "repointed-new": new}


def _multi_again(stack: Stack) -> dict[str, Expected]:
    """The demo's `multi` tag is an index by now: pull it, and run a new container on it."""
    name = f"{stack.secure.address}/demo/multi"
    pull(stack.daemon.admin, name, "multi", stack.alice.auth_config())
    run_container(stack.daemon.admin, "multi-new", f"{name}:multi")
    return {"multi-new": Expected("fresh")}
