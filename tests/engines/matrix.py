"""The engines and stores the matrix runs: the machine's own dockerd, and Debian's 26 and 28, each
with the classic store (vfs) and the containerd image store (snapshotter `native`)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.stack import Stack
from tests.stack.engines import engine_tree


@dataclass(frozen=True)
class EngineSpec:
    release: str | None  # docker.io's upstream version from Debian's archive; None: the machine's own
    image_store: str  # classic | containerd

    @property
    def storage_driver(self) -> str:
        return "native" if self.image_store == "containerd" else "vfs"


MATRIX = {
    "own-vfs": EngineSpec(None, "classic"),
    "26-vfs": EngineSpec("26.1.5", "classic"),
    "26-containerd": EngineSpec("26.1.5", "containerd"),
    "28-vfs": EngineSpec("28.5.2", "classic"),
    "28-containerd": EngineSpec("28.5.2", "containerd"),
}


@contextlib.contextmanager
def started_stack(spec: EngineSpec, workdir: str | Path) -> Iterator[Stack]:
    """The test stack on spec's engine; EngineUnavailable when the engine cannot be fetched."""
    engine = engine_tree(spec.release) if spec.release else None
    with Stack(storage_driver=spec.storage_driver, engine=engine, image_store=spec.image_store).start(workdir) as stack:
        yield stack
