"""Test-only reads of the agent's SQLite state store (the agent itself never needs them)."""

from __future__ import annotations

import math

from gitops_edge.adapters.store.sqlite import StateStore


def outbox_size(store: StateStore) -> int:
    """How many webhook messages wait in the outbox, due or not."""
    return len(store.outbox_due(math.inf))
