"""Where the shared corpus of real artifacts lives: ``<repo>/../shared/corpus`` (as CI lays it out).

``GITOPS_EDGE_SHARED`` overrides the location of ``shared/`` (a work tree
that is not beside it). A missing corpus fails the tests that need it: a
skipped corpus test would hide a regression.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def corpus(*parts: str) -> Path:
    shared = Path(os.environ.get("GITOPS_EDGE_SHARED") or REPO.parent / "shared")
    path = shared.joinpath("corpus", *parts)
    if not path.exists():
        raise AssertionError(f"corpus {path} is missing: shared/ must sit beside the clone "
                             "(or set GITOPS_EDGE_SHARED)")
    return path
