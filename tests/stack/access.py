"""Who may do what in the token server: admins, private repositories, anonymous pulls.

    admin                 every action on every repository, and the catalog
    private repository    pull for the named readers only (after Basic auth)
    any other repository  pull for anyone, anonymous included
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

_ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


@dataclass(frozen=True)
class AccessPolicy:
    users: Mapping[str, str] = field(default_factory=dict)  # username -> password
    admins: frozenset[str] = frozenset()
    private: tuple[str, ...] = ()  # exact repository names, or prefixes ending in "/"
    private_readers: frozenset[str] = frozenset()

    def check_password(self, username: str, password: str) -> bool:
        expected = self.users.get(username)
        return expected is not None and secrets.compare_digest(expected, password)

    def is_private(self, repository: str) -> bool:
        return any(repository.startswith(p) if p.endswith("/") else repository == p for p in self.private)

    def allowed(self, username: str | None, resource_type: str, name: str) -> frozenset[str]:
        if username in self.admins:
            return _ALL_ACTIONS
        if resource_type != "repository":
            return frozenset()  # the catalog is for admins only
        if self.is_private(name):
            return frozenset({"pull"}) if username in self.private_readers else frozenset()
        return frozenset({"pull"})


def parse_scope(scope: str) -> tuple[str, str, tuple[str, ...]] | None:
    """`repository:name:pull,push` -> ("repository", "name", ("pull", "push"))."""
    resource_type, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not resource_type or not name:
        return None
    return resource_type, name, tuple(a for a in actions.split(",") if a)
