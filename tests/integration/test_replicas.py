"""Replicas on the real engine: the containers Compose creates, scaling, and a rollback of N."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker

from gitops_edge.demo import tinyimage
from gitops_edge.model.evidence import FAILED_SUFFIX
from tests.integration.agent_harness import Device, assert_clean_failure
from tests.integration.test_docker_oracle import normalize

SERVE = json.dumps(tinyimage.SERVE)
IDLE = '["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1; done"]'
HEALTHY_PROBE = '["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]'
NUMBER = "com.docker.compose.container-number"


def oracle_file(image: str) -> str:
    """``deploy.replicas: 3``, ``scale: 2`` and a 0-replica dependency, in one file."""
    return f"""\
services:
  web:
    image: {image}
    command: {SERVE}
    deploy:
      replicas: 3
  worker:
    image: {image}
    command: {IDLE}
    scale: 2
    labels: {{role: worker}}
    depends_on: [web, idle]
    links: ["web:w"]
  idle:
    image: {image}
    command: {IDLE}
    deploy:
      replicas: 0
"""


def by_name(client: docker.DockerClient, project: str, projects: tuple[str, str]) -> dict[str, dict[str, Any]]:
    """Every container of ``project``, normalized as the other oracle tests do, by ``<P>-service-n``."""
    found = client.api.containers(all=True, filters={"label": f"com.docker.compose.project={project}"})
    raw = [client.api.inspect_container(c["Id"]) for c in found]
    service_of = {c["Id"]: c["Config"]["Labels"]["com.docker.compose.service"] for c in raw}
    out = {}
    for c in raw:
        n = normalize(c, projects, service_of)
        # links to every replica: Compose lists them in the engine's order, newest first
        n["Networks"] = {net: (*v[:3], sorted(v[3] or [])) for net, v in n["Networks"].items()}
        out[n["Name"]] = n
    return out


def both_up(device: Device, ours: str, theirs: str, text: str, tmp_path: Path, compose_bin: str) -> None:
    """The same file run by Compose (project ``theirs``) and synced by the agent (stack ``ours``)."""
    (tmp_path / "oracle").mkdir()
    (tmp_path / "oracle" / "compose.yaml").write_text(text)
    up = subprocess.run([compose_bin, "-p", theirs, "up", "-d"], cwd=tmp_path / "oracle",
                        capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stderr
    device.commit({"README.md": "d1\n", f"{ours}/compose.yaml": text})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr


def test_replicas_and_scale_create_what_compose_creates(
    device: Device, stack_name: str, tmp_path: Path, compose_bin: str, test_images: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    theirs = "o" + uuid.uuid4().hex[:10]
    device.cleanup.extend([stack_name, theirs])  # type: ignore[attr-defined]
    text = oracle_file(test_images["v1"])
    both_up(device, stack_name, theirs, text, tmp_path, compose_bin)

    projects = (theirs, stack_name)
    oracle, ours = by_name(docker_client, theirs, projects), by_name(docker_client, stack_name, projects)
    assert sorted(oracle) == sorted(ours) == [
        "/<P>-web-1", "/<P>-web-2", "/<P>-web-3", "/<P>-worker-1", "/<P>-worker-2",
    ]
    for name, want in oracle.items():
        assert want["ComposeLabels"][NUMBER] == name[-1]
        if "worker" in name:  # each replica of web, under the linking container's own number
            [links] = [v[3] for v in want["Networks"].values()]
            assert f"<P>-web-3:web-{name[-1]}" in links and len(links) == 9, links
        for key in want:
            assert ours[name][key] == want[key], f"{name}: {key} differs from docker compose"

    # and Compose sees the agent's replicas as its own project's
    ps = subprocess.run([compose_bin, "-p", stack_name, "ps", "--format", "json"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ps.returncode == 0, ps.stderr
    listed = sorted((row["Service"], row["Name"]) for row in map(json.loads, ps.stdout.splitlines()))
    assert listed == [("web", f"{stack_name}-web-{n}") for n in (1, 2, 3)] + [
        ("worker", f"{stack_name}-worker-{n}") for n in (1, 2)]


def scaled(image: str, replicas: int, command: str = SERVE) -> str:
    return f"""\
services:
  web:
    image: {image}
    command: {command}
    restart: unless-stopped
    deploy:
      replicas: {replicas}
    healthcheck:
      test: {HEALTHY_PROBE}
      interval: 1s
      timeout: 2s
      retries: 2
"""


def replicas(dev: Device, s: str) -> dict[str, tuple[str, str, str | None, str, str]]:
    """name -> (id, number label, health, status, restart policy), without a container set aside."""
    out = {}
    for name, c in dev.containers(s).items():
        if name.endswith(FAILED_SUFFIX):
            continue
        c.reload()
        health = (c.attrs["State"].get("Health") or {}).get("Status")
        out[name] = (c.id, c.labels[NUMBER], health, c.status, c.attrs["HostConfig"]["RestartPolicy"]["Name"])
    return out


def test_scale_up_fail_roll_back_then_scale_down(device: Device, stack_name: str,
                                                 test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.health = "{timeout: 60s, stable_for: 1s}"
    device.commit({"README.md": "d1\n", f"{s}/compose.yaml": scaled(test_images["v1"], 1)})
    assert device.cli("sync").returncode == 0
    one = replicas(device, s)
    assert list(one) == [f"{s}-web-1"]

    device.commit({f"{s}/compose.yaml": scaled(test_images["v1"], 3)}, "scale to 3")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    three = replicas(device, s)
    assert sorted(three) == [f"{s}-web-{n}" for n in (1, 2, 3)]
    assert three[f"{s}-web-1"] == one[f"{s}-web-1"]  # scaling up leaves the first replica alone
    assert all(v[1] == name[-1] and v[2] == "healthy" and v[3] == "running" and v[4] == "unless-stopped"
               for name, v in three.items()), three

    device.commit({f"{s}/compose.yaml": scaled(test_images["v2"], 3, '["sh", "-c", "sleep 0.5; exit 3"]')},
                  "a crashing release of all three")
    out = device.cli("sync")
    assert_clean_failure(out, 1, "web", "rolled back")
    assert replicas(device, s) == three  # the very same three, healthy, with their restart policy

    device.commit({f"{s}/compose.yaml": scaled(test_images["v1"], 2)}, "scale to 2")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert replicas(device, s) == {k: v for k, v in three.items() if not k.endswith("-3")}
    assert not [n for n in device.containers(s) if n.endswith(FAILED_SUFFIX)]


def test_sharing_a_scaled_service_joins_replica_1_as_compose_does(
    device: Device, stack_name: str, tmp_path: Path, compose_bin: str, test_images: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    """``network_mode``/``pid: service:x`` and ``volumes_from: x`` with 3 replicas of x: Compose
    takes the first of x's containers by name (``-x-1``); so must the agent (not the newest)."""
    theirs = "o" + uuid.uuid4().hex[:10]
    device.cleanup.extend([stack_name, theirs])  # type: ignore[attr-defined]
    image = test_images["v1"]
    text = (f"services:\n  x:\n    image: {image}\n    command: {IDLE}\n    scale: 3\n"
            f"    volumes: [/shared]\n"
            f"  sharer:\n    image: {image}\n    command: {IDLE}\n    network_mode: service:x\n"
            f"    pid: service:x\n    volumes_from: [x]\n")
    both_up(device, stack_name, theirs, text, tmp_path, compose_bin)

    def joined(project: str) -> list[str]:
        host = docker_client.api.inspect_container(f"{project}-sharer-1")["HostConfig"]
        ids = [host["NetworkMode"].removeprefix("container:"), host["PidMode"].removeprefix("container:"),
               *host["VolumesFrom"]]
        return [docker_client.api.inspect_container(i)["Name"].lstrip("/").replace(project, "P") for i in ids]

    assert joined(theirs) == joined(stack_name) == ["P-x-1", "P-x-1", "P-x-1"]
