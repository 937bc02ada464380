"""Which containers a scan looks at, by Watchtower's rules.

- Names given: only those containers (a leading "/" as docker prints it is ignored).
- ``--scope NAME``: only containers whose scope label is NAME; ``none`` means no scope label.
- ``--label-enable``: only containers labelled enable=true.
Containers filtered out are not part of the scan at all. A container labelled
enable=false is always kept out of the registry checks but is still reported,
as skipped, so that an operator sees why it was never checked.
"""
from __future__ import annotations

from dataclasses import dataclass

from .daemon import ContainerInfo

ENABLE_LABEL = "com.centurylinklabs.watchtower.enable"
SCOPE_LABEL = "com.centurylinklabs.watchtower.scope"
NO_SCOPE = "none"


@dataclass(frozen=True)
class Selection:
    names: frozenset[str] = frozenset()
    label_enable: bool = False
    scope: str | None = None

    def includes(self, container: ContainerInfo) -> bool:
        if self.names and container.name not in self.names and container.id not in self.names \
                and not any(container.id.startswith(n) for n in self.names if len(n) >= 12):
            return False
        if self.label_enable and _label(container, ENABLE_LABEL) != "true":
            return False
        if self.scope is not None:
            scope = container.labels.get(SCOPE_LABEL, "").strip()
            if scope != ("" if self.scope == NO_SCOPE else self.scope):
                return False
        return True


def disabled_by_label(container: ContainerInfo) -> bool:
    return _label(container, ENABLE_LABEL) == "false"


def normalise_names(names) -> frozenset[str]:
    return frozenset(name.lstrip("/") for name in names if name.strip("/"))


def _label(container: ContainerInfo, key: str) -> str:
    return container.labels.get(key, "").strip().lower()
