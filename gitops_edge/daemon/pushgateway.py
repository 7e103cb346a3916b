"""Push the daemon's metrics to a Prometheus Pushgateway after each sync (``metrics.pushgateway``).

For devices Prometheus cannot scrape (behind NAT, on cellular): each push
replaces this device's group (job ``gitops-edge``, instance = device id), so the
gateway always holds the latest numbers of every device, whoever asked last.
A gateway that is away costs a warning in the log, never a sync.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, push_to_gateway

log = logging.getLogger("gitops_edge.metrics")

JOB = "gitops-edge"


def push_metrics(registry: CollectorRegistry, url: str, device_id: str, timeout_s: float) -> bool:
    """PUT the registry to the gateway's group for this device; False (and a warning) if that failed."""
    try:
        push_to_gateway(url, job=JOB, registry=registry, grouping_key={"instance": device_id}, timeout=timeout_s)
    except (OSError, ValueError) as exc:  # urllib's URLError and HTTPError are OSErrors
        log.warning("pushing metrics to %s failed: %s", url, exc)
        return False
    return True
