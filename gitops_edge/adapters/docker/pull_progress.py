"""Progress of an image pull, from the Docker engine's streamed JSON lines.

A 67-second pull on a slow uplink must not be silence: every few seconds one
line says how many layers are done and how many bytes came down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("gitops_edge.docker.pull")
EVERY_S = 5.0


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


class PullProgress:
    """Layers seen, layers done and bytes per layer, fed one engine status line at a time."""

    def __init__(self, image: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.image = image
        self.clock = clock
        self.began = self.told = clock()
        self.layers: dict[str, tuple[int, int]] = {}  # layer id -> (bytes done, total)
        self.done: set[str] = set()

    def feed(self, line: Mapping[str, Any]) -> None:
        layer, status = line.get("id"), str(line.get("status") or "")
        if not isinstance(layer, str) or ":" in layer:  # the tag or digest line, not a layer
            return
        detail = line.get("progressDetail") or {}
        if status == "Downloading" and isinstance(detail, dict):
            current, total = int(detail.get("current") or 0), int(detail.get("total") or 0)
            self.layers[layer] = (current, total)
        else:
            self.layers.setdefault(layer, (0, 0))
        if status in ("Pull complete", "Already exists", "Download complete"):
            done, total = self.layers[layer]
            self.layers[layer] = (max(done, total), total)
            if status != "Download complete":
                self.done.add(layer)
        now = self.clock()
        if now - self.told >= EVERY_S:
            self.told = now
            log.info("pulling %s: %s", self.image, self.summary())

    def summary(self) -> str:
        got = sum(d for d, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values())
        size = f"{_mb(got)} of {_mb(total)}" if total else _mb(got)
        return f"{len(self.done)}/{len(self.layers)} layers, {size}, {self.clock() - self.began:.0f}s"
