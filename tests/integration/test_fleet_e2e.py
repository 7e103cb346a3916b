"""Targeting against the real engine: one fleet repository, several simulated devices.

The devices share one Docker engine, so each gets stacks no other device in
the same test runs (container names are global on a host).
"""

from __future__ import annotations

from pathlib import Path

import docker

from tests.conftest import commit_files, git
from tests.integration.agent_harness import Device

LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def stack(*, env: str = "MODE: ${MODE}") -> str:
    return f"services:\n  app:\n    image: ${{IMAGE}}\n    command: {LOOP!r}\n    environment:\n      {env}\n"


def make_device(tmp_path: Path, repo: Path, client: docker.DockerClient, name: str, **kw: str) -> Device:
    work = tmp_path / name
    work.mkdir()
    return Device(repo=repo, workdir=work, client=client, path=".", health="{timeout: 30s, stable_for: 1s}", **kw)


def app_env(dev: Device, project: str) -> dict[str, str]:
    [c] = dev.containers(project).values()
    return dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])


def image_of(dev: Device, project: str) -> str:
    """The image id the container runs (the agent pins tags to digests)."""
    [c] = dev.containers(project).values()
    return str(c.attrs["Image"])


def test_each_device_gets_its_stacks_and_values(tmp_path: Path, git_repo: Path, docker_client: docker.DockerClient,
                                                cleanup_stacks: list[str], stack_name: str,
                                                test_images: dict[str, str]) -> None:
    s = stack_name
    w1, w2, sn = f"{s}w1", f"{s}w2", f"{s}sn"
    cleanup_stacks += [w1, w2, sn]
    commit_files(git_repo, {
        "fleet.yaml": f"stacks:\n  {w1}: {{devices: {{site: farm-*, ring: canary}}}}\n"
                      f"  {w2}: {{devices: {{site: farm-*, ring: [stable, beta]}}}}\n"
                      f"  {sn}: {{devices: {{id: sensor-*}}}}\n"
                      "groups:\n  gpu: {model: jetson-*}\n",
        **{f"stacks/{n}/compose.yaml": stack() for n in (w1, w2, sn)},
        **{f"stacks/{n}/.env": f"IMAGE={test_images['v1']}\nMODE=base\n" for n in (w1, w2, sn)},
        f"groups/gpu/{w2}/values.yaml": "MODE: gpu\n",
        f"devices/sensor-1/{w1}/values.yaml": "MODE: dev-a\n",
        f"devices/sensor-1/{w1}/.env": "DB_PASSWORD=hunter2\n",
    }, "fleet")
    a = make_device(tmp_path, git_repo, docker_client, "a", device_id="sensor-1",
                    labels="{site: farm-1, ring: canary}")
    b = make_device(tmp_path, git_repo, docker_client, "b", device_id="gw-1",
                    labels="{site: farm-2, ring: stable, model: jetson-nx}")

    plan = a.cli("plan")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[0] == f"device sensor-1 (ring=canary, site=farm-1): stacks {w1}, {sn}"
    for dev in (a, b):
        out = dev.cli("sync")
        assert out.returncode == 0, out.stdout + out.stderr
    assert app_env(a, w1)["MODE"] == "dev-a"  # device override over the stack's .env
    assert app_env(a, sn)["MODE"] == "base"
    assert app_env(b, w2)["MODE"] == "gpu"  # group layer
    assert set(a.status()["stacks"][i]["stack"] for i in range(2)) == {w1, sn}
    assert [st["stack"] for st in b.status()["stacks"]] == [w2]

    # the CLI shows the same selection for an identity, secrets masked
    shown = a.cli("validate", str(git_repo), "--device-id", "sensor-1", "--label", "site=farm-1",
                  "--label", "ring=canary")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines() if " = " in line]
    assert ["DB_PASSWORD", "=", "****", f"[devices/sensor-1/{w1}/.env]"] in rows and "hunter2" not in shown.stdout
    assert ["MODE", "=", "dev-a", f"[devices/sensor-1/{w1}/values.yaml]"] in rows

    # a value change in one device's override touches only that device's stack
    before_sn = a.containers(sn)
    commit_files(git_repo, {f"devices/sensor-1/{w1}/values.yaml": "MODE: dev-b\n"}, "tune a")
    assert a.cli("sync").returncode == 0
    assert app_env(a, w1)["MODE"] == "dev-b"
    assert {k: c.id for k, c in a.containers(sn).items()} == {k: c.id for k, c in before_sn.items()}
    out = b.cli("sync")
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1].startswith("unchanged"), out.stdout

    # a label change deselects a stack: the device removes what it applied before, and only that
    a.labels = "{site: city-1, ring: canary}"
    out = a.cli("sync")
    assert out.returncode == 0, out.stdout + out.stderr
    assert a.containers(w1) == {}
    assert set(a.containers(sn)) == set(before_sn)
    assert [st["stack"] for st in a.status()["stacks"]] == [sn]
    assert len(b.containers(w2)) == 1


def test_ring_promotion(tmp_path: Path, git_repo: Path, docker_client: docker.DockerClient,
                        cleanup_stacks: list[str], stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    ca, st = f"{s}ca", f"{s}st"
    image_id = {v: docker_client.images.get(ref).id for v, ref in test_images.items()}
    cleanup_stacks += [ca, st]

    def release(image: str, message: str) -> str:
        return commit_files(git_repo, {
            "fleet.yaml": f"stacks:\n  {ca}: {{devices: {{ring: canary}}}}\n  {st}: {{devices: {{ring: stable}}}}\n",
            **{f"stacks/{n}/compose.yaml": stack() for n in (ca, st)},
            **{f"stacks/{n}/.env": f"IMAGE={image}\nMODE=m\n" for n in (ca, st)},
        }, message)

    v1 = release(test_images["v1"], "v1")
    git(git_repo, "branch", "release/canary", v1)
    git(git_repo, "branch", "release/stable", v1)
    a = make_device(tmp_path, git_repo, docker_client, "a", device_id="a", labels="{ring: canary}",
                    ref="release/${label:ring}")
    b = make_device(tmp_path, git_repo, docker_client, "b", device_id="b", labels="{ring: stable}",
                    ref="release/${label:ring}")
    for dev in (a, b):
        assert dev.cli("sync").returncode == 0
    assert image_of(a, ca) == image_of(b, st) == image_id["v1"]
    b_before = {k: c.id for k, c in b.containers(st).items()}

    v2 = release(test_images["v2"], "v2")
    git(git_repo, "branch", "-f", "release/canary", v2)  # fast-forward the canary ring only
    for dev in (a, b):
        out = dev.cli("sync")
        assert out.returncode == 0, out.stdout + out.stderr
    assert image_of(a, ca) == image_id["v2"]
    assert image_of(b, st) == image_id["v1"]
    assert {k: c.id for k, c in b.containers(st).items()} == b_before
    assert a.status()["stacks"][0]["services"][0]["revision"] == v2

    git(git_repo, "branch", "-f", "release/stable", v2)  # promote
    out = b.cli("sync")
    assert out.returncode == 0, out.stdout + out.stderr
    assert image_of(b, st) == image_id["v2"]
    assert b.status()["stacks"][0]["services"][0]["revision"] == v2
