"""The Git source port: where the ref points, and a clean work tree of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Checkout:
    """A clean work tree of one exact commit."""

    revision: str  # full commit sha
    root: Path  # work tree root
    changed: bool  # the remote ref moved since the last sync


class GitSource(Protocol):
    def remote_revision(self) -> str:
        """Ask the remote where the ref points (ls-remote); no fetch."""
        ...

    def checkout(self, applied_revision: str | None = None, revision: str | None = None) -> Checkout:
        """Fetch if the ref moved and check the exact commit out, clean.

        ``revision``: what ``remote_revision()`` answered a moment ago in this sync, so the
        remote is not asked again (None: ask it).

        Raises ``TrustError`` (nothing checked out) when ``source.verify`` is set
        and the commit is not signed by an allowed signer, or when, unless
        ``source.allow_rewind``, it does not descend from ``applied_revision``.
        """
        ...
