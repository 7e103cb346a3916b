"""Issue 2's promise against a real engine: Git commit -> containers, exactly."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.agent_harness import Device, assert_clean_failure


def web_stack(image: str, *, worker: bool = True, worker_image: str | None = None, env: str = "a") -> str:
    out = f"""\
services:
  web:
    image: {image}
    environment:
      MODE: {env}
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 5
"""
    if worker:
        out += f"""\
  worker:
    image: {worker_image or image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    depends_on: [web]
"""
    out += "volumes:\n  data: {}\n"
    return out


def ids(dev: Device, stack: str) -> dict[str, str]:
    return {name: c.id for name, c in dev.containers(stack).items()}


def test_deploy_noop_update_remove(device: Device, stack_name: str, test_images: dict[str, str],
                                   compose_bin: str) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    # (a path that vanishes from Git is an error, not "remove everything": keep the directory)
    rev1 = device.commit({"README.md": "device d1\n", f"{s}/compose.yaml": web_stack(test_images["v1"])}, "deploy")

    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert "create web: new service" in out.stdout
    first = ids(device, s)
    assert set(first) == {f"{s}-web-1", f"{s}-worker-1"}
    web = device.containers(s)[f"{s}-web-1"]
    assert web.labels["io.gitops-edge.revision"] == rev1
    assert web.attrs["State"]["Health"]["Status"] == "healthy"

    # docker compose sees the agent's stack as its own
    ps = subprocess.run([compose_bin, "-p", s, "ps", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert ps.returncode == 0, ps.stderr
    services = {json.loads(line)["Service"] for line in ps.stdout.splitlines() if line.strip()}
    assert services == {"web", "worker"}

    # a second sync of the same commit touches nothing
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("unchanged")
    assert ids(device, s) == first

    # the image of one service changes: only that one is recreated
    device.commit({f"{s}/compose.yaml": web_stack(test_images["v1"], worker_image=test_images["v2"])}, "worker v2")
    plan = device.cli("plan", "--json")
    assert plan.returncode == 0, plan.stderr
    actions = json.loads(plan.stdout)["stacks"][0]["actions"]
    assert [(a["action"], a["service"]) for a in actions] == [("recreate", "worker")]
    assert "image changed" in actions[0]["reason"]
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    now = ids(device, s)
    assert now[f"{s}-web-1"] == first[f"{s}-web-1"]
    assert now[f"{s}-worker-1"] != first[f"{s}-worker-1"]
    assert len(now) == 2  # the old worker is gone, not kept

    # an environment change names the field that changed
    device.commit({f"{s}/compose.yaml": web_stack(test_images["v1"], worker_image=test_images["v2"], env="b")})
    plan = json.loads(device.cli("plan", "--json").stdout)
    assert [(a["service"], a["reason"]) for a in plan["stacks"][0]["actions"]] == [("web", "environment changed")]
    assert device.cli("sync").returncode == 0

    # a removed service disappears; the stack's named volume stays
    device.commit({f"{s}/compose.yaml": web_stack(test_images["v1"], worker=False, env="b")}, "drop worker")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert "remove worker: no longer in Git" in out.stdout
    assert set(ids(device, s)) == {f"{s}-web-1"}

    # a removed stack disappears with its network; its volume stays
    device.commit({f"{s}/compose.yaml": None}, "remove stack")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert ids(device, s) == {}
    assert device.client.volumes.get(f"{s}_data") is not None
    assert not device.client.networks.list(names=[f"{s}_default"])

    hist = json.loads(device.cli("history", "--json").stdout)
    assert [h["outcome"] for h in hist][:3] == ["applied", "applied", "applied"]


def test_bad_input_changes_nothing(device: Device, stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.commit({f"{s}/compose.yaml": web_stack(test_images["v1"], worker=False)})
    assert device.cli("sync").returncode == 0
    before = ids(device, s)

    bad = web_stack(test_images["v2"], worker=False).replace("    healthcheck:", "    helthcheck:")
    device.commit({f"{s}/compose.yaml": bad}, "typo")
    out = device.cli("sync")
    assert_clean_failure(out, 2, f"devices/d1/{s}/compose.yaml:8", "services.web.helthcheck")
    assert ids(device, s) == before

    device.commit({f"{s}/compose.yaml": "services:\n  web:\n    image: [oops\n"}, "broken yaml")
    out = device.cli("sync")
    assert_clean_failure(out, 2, f"devices/d1/{s}/compose.yaml:")
    assert ids(device, s) == before

    # the remote goes away: exit 4, containers untouched
    device.repo.rename(device.repo.with_name("gone"))
    out = device.cli("sync")
    assert_clean_failure(out, 4)
    assert ids(device, s) == before


def test_bad_agent_config_exit_2(device: Device) -> None:
    cfg = device.workdir / "bad.yaml"
    cfg.write_text("source:\n  url: /x\n  interval: soon\n")
    out = subprocess.run(
        [sys.executable, "-m", "gitops_edge", "--config", str(cfg), "sync"], capture_output=True, text=True, timeout=60
    )
    assert_clean_failure(out, 2, f"{cfg}:3", "source.interval")
