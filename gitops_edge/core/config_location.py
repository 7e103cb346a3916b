"""What the config section parsers need from the reader: where a key path is in the file.

A Protocol rather than the reader class itself, so the section parsers
(``config_trust``, ``config_mqtt``) do not import ``core.config``, which imports them.
"""

from __future__ import annotations

from typing import Protocol

from gitops_edge.core.compose.problems import KeyPath
from gitops_edge.errors import Location


class Locator(Protocol):
    def loc(self, path: KeyPath) -> Location:
        """``file:line: dotted.key`` of ``path`` (the line of its nearest ancestor that has one)."""
        ...
