"""Remove everything a Compose project left on the engine (tests and benchmarks)."""

from __future__ import annotations

import docker


def remove_project(client: docker.DockerClient, project: str) -> None:
    flt = {"label": f"com.docker.compose.project={project}"}
    for c in client.containers.list(all=True, filters=flt, ignore_removed=True):
        try:
            c.remove(force=True, v=False)
        except docker.errors.NotFound:
            pass
    for n in client.networks.list(filters=flt):
        try:
            n.remove()
        except docker.errors.APIError:
            pass
    for v in client.volumes.list(filters=flt):
        try:
            v.remove(force=True)
        except docker.errors.APIError:
            pass
