"""Which modules a one-shot command imported: the start-up tests' probe (issue 16, start-up)."""

from __future__ import annotations

# Modules a no-change `sync` answered from the memo, or `status`, must not import (the config unchanged
# since the process before, so its parse is cached).
HEAVY = (
    "docker", "requests", "urllib3", "git", "ssl", "http.client", "http.server", "email", "urllib.request",
    "tarfile", "apscheduler", "paho", "prometheus_client", "sigstore", "cryptography",
    "gitops_edge.engine.reconcile", "gitops_edge.core.compose.stack", "gitops_edge.core.plan",
    "gitops_edge.model.spec", "gitops_edge.adapters.files.desired_state", "gitops_edge.adapters.files.revision_tree",
    # an unchanged agent config comes from its cached parse (adapters/files/config_cache.py): no PyYAML;
    # a config without trust rules, fleet files or update windows needs neither their models nor datetime's users
    "yaml", "gitops_edge.adapters.files.yaml_reader", "gitops_edge.model.trust", "gitops_edge.core.fleet",
    "gitops_edge.core.windows", "gitops_edge.model.journal",
)
CAPTURE = (
    "import json, sys; from gitops_edge.cli.main import main; rc = main(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules))); sys.exit(rc)"
)


def heavy(modules: set[str]) -> list[str]:
    """The ``HEAVY`` modules (or their sub-modules) among ``modules``."""
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
