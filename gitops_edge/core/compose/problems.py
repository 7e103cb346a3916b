"""Where a problem is: key paths, line lookup and error collection.

The YAML adapter hands the pure core a map from key path to line, so errors
found here can still name ``file:line: key.path``. Problems are collected
rather than raised one at a time, so ``gitops-edge validate`` can list them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from gitops_edge.errors import DesiredStateError, Location

if TYPE_CHECKING:
    from gitops_edge.model.spec import DesiredState

KeyPath = tuple[str | int, ...]
LineMap = Mapping[KeyPath, int]


def format_path(path: KeyPath) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def line_of(lines: LineMap, path: KeyPath) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    for cut in range(len(path), -1, -1):
        line = lines.get(path[:cut])
        if line is not None:
            return line
    return None


class StackErrors(DesiredStateError):
    """Every problem found in one stack; reads as the first of them."""

    def __init__(
        self,
        errors: Iterable[DesiredStateError],
        *,
        partial: DesiredState | None = None,
        by_stack: Mapping[str, Sequence[DesiredStateError]] | None = None,
    ) -> None:
        self.errors: tuple[DesiredStateError, ...] = tuple(errors)
        # when every problem belongs to one stack: the valid stacks, and the problems by stack
        self.partial = partial
        self.by_stack: dict[str, tuple[DesiredStateError, ...]] = {k: tuple(v) for k, v in (by_stack or {}).items()}
        first = self.errors[0]
        super().__init__(first.message, first.location)


class Problems:
    """Collects located ``DesiredStateError``s for one compose file."""

    def __init__(self, file: str, lines: LineMap) -> None:
        self.file = file
        self.lines = lines
        self.errors: list[DesiredStateError] = []

    def add(self, path: KeyPath, message: str) -> None:
        loc = Location(self.file, line_of(self.lines, path), format_path(path) or None)
        self.errors.append(DesiredStateError(message, loc))

    def extend(self, errors: Iterable[DesiredStateError]) -> None:
        self.errors.extend(errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise StackErrors(self.errors)
