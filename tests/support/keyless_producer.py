"""Run the Node producer of real keyless bundles (tests/support/sigstore_mock/producer.js).

One run = one fresh mock CA, CT log, Rekor and TSA, one trusted_root.json, and
every job signed against them. See producer.js for the job fields.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

MOCK_DIR = Path(__file__).parent / "sigstore_mock"
PRODUCER = MOCK_DIR / "producer.js"


def missing() -> str | None:
    """Why the producer cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed; run scripts/bootstrap"
    if not (MOCK_DIR / "node_modules" / "@sigstore" / "sign").is_dir():
        return f"{MOCK_DIR}/node_modules is missing; run scripts/bootstrap (npm ci --prefix {MOCK_DIR})"
    return None


def produce(workdir: Path, jobs: list[dict[str, Any]], timeout: float = 120) -> Path:
    """Sign ``jobs``; returns the matching trusted_root.json. Raises AssertionError with node's output."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "trusted_root.json"
    spec = workdir / "jobs.json"
    spec.write_text(json.dumps({"trustedRoot": str(root), "jobs": jobs}))
    out = subprocess.run(["node", str(PRODUCER), str(spec)], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"sigstore producer failed ({out.returncode}): {out.stderr[-2000:]}")
    return root
