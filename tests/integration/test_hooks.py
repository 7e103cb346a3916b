"""post_start / pre_stop on the real engine, checked against containers ``docker compose`` makes.

The same compose file runs under Compose (``up -d``, ``down``) and under the
agent (sync, then the stack leaves the repository): the post_start hook leaves
the same file in the container, with the hook's user, working directory and
environment; the pre_stop hook appends the same line to a named volume. A
post_start that fails makes ``docker compose up`` fail, and makes the agent's
update a failed start: the stack rolls back and the evidence names the hook.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker

from tests.integration.agent_harness import Device, assert_clean_failure

SLEEPER = '["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1; done"]'


def hooked(image: str, *, post_start: str = "", marker: str = "v1") -> str:
    """One service with both hooks; ``post_start`` replaces the default hook's command."""
    post = post_start or ('["sh", "-c", "echo \\"$$GREETING from $$(id -u) in $$(pwd)\\" > /dev/shm/post_start; '
                          'echo \\"$$UNSET_ME.\\" >> /dev/shm/post_start"]')
    return f"""\
services:
  app:
    image: {image}
    command: {SLEEPER}
    restart: unless-stopped
    environment: {{UNSET_ME: set for the service}}
    volumes: [drained:/drained]
    post_start:
      - command: {post}
        user: "1000"
        working_dir: /dev/shm
        environment: {{GREETING: hello, UNSET_ME: null}}
    pre_stop:
      - command: ["sh", "-c", "echo {marker} stopped by $$(id -u) >> /drained/log"]
volumes:
  drained: {{}}
"""


def volume_text(client: docker.DockerClient, image: str, volume: str, path: str) -> str:
    out = client.containers.run(image, ["sh", "-c", f"cat /v/{path} 2>/dev/null || true"],
                                volumes={volume: {"bind": "/v", "mode": "ro"}}, remove=True)
    return bytes(out).decode()


def exec_text(client: docker.DockerClient, container: str, path: str) -> str:
    code, out = client.containers.get(container).exec_run(["cat", path])
    assert code == 0, out
    return bytes(out).decode()


def compose(compose_bin: str, project: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([compose_bin, "-p", project, "-f", "compose.yaml", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_hooks_do_in_our_containers_what_they_do_in_composes(
    tmp_path: Path, device: Device, stack_name: str, compose_bin: str, test_images: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    image, s, ref = test_images["v1"], stack_name, stack_name + "c"
    device.cleanup += [s, ref]  # type: ignore[attr-defined]
    text = hooked(image)

    (tmp_path / "compose.yaml").write_text(text)
    up = compose(compose_bin, ref, tmp_path, "up", "-d")
    assert up.returncode == 0, up.stderr
    theirs = exec_text(docker_client, f"{ref}-app-1", "/dev/shm/post_start")
    down = compose(compose_bin, ref, tmp_path, "down")
    assert down.returncode == 0, down.stderr
    their_log = volume_text(docker_client, image, f"{ref}_drained", "log")

    device.commit({"README.md": "d1\n", f"{s}/compose.yaml": text})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    ours = exec_text(docker_client, f"{s}-app-1", "/dev/shm/post_start")
    # the stack leaves the repository: the agent stops its container, pre_stop first
    device.commit({f"{s}/compose.yaml": None}, "stack removed")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert device.containers(s) == {}
    our_log = volume_text(docker_client, image, f"{s}_drained", "log")

    # user, working_dir and environment of the hook (a null entry unset in the exec), as Compose runs it
    assert theirs == ours == "hello from 1000 in /dev/shm\n.\n"
    assert their_log == our_log == "v1 stopped by 0\n"


def test_a_failing_post_start_fails_compose_up_and_rolls_our_stack_back(
    tmp_path: Path, device: Device, stack_name: str, compose_bin: str, test_images: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    s, ref = stack_name, stack_name + "c"
    device.cleanup += [s, ref]  # type: ignore[attr-defined]
    failing = '["sh", "-c", "echo cache is cold >&2; exit 3"]'
    bad = hooked(test_images["v2"], post_start=failing, marker="v2")

    (tmp_path / "compose.yaml").write_text(bad)
    up = compose(compose_bin, ref, tmp_path, "up", "-d")
    assert up.returncode != 0 and "app hook exited with status 3" in up.stderr, up.stderr

    device.commit({"README.md": "d1\n", f"{s}/compose.yaml": hooked(test_images["v1"])})
    assert device.cli("sync").returncode == 0
    before = {n: c.id for n, c in device.containers(s).items()}
    bad_rev = device.commit({f"{s}/compose.yaml": bad}, "a hook that fails")
    out = device.cli("sync")
    assert_clean_failure(out, 1, "app", "rolled back")
    assert "hook post_start[0] (sh -c 'echo cache is cold >&2; exit 3') exited with status 3: cache is cold" \
        in out.stderr, out.stderr

    live = {n: c for n, c in device.containers(s).items() if not n.endswith("-gitops-edge-failed")}
    assert {n: c.id for n, c in live.items()} == before  # the very same v1 container runs again
    assert {c.status for c in live.values()} == {"running"}
    # v1 stopped first (a service with a volume is stop-first), then the new one on the way back: each
    # ran its own pre_stop hook
    assert volume_text(docker_client, test_images["v1"], f"{s}_drained", "log") == "v1 stopped by 0\nv2 stopped by 0\n"
    status = json.loads(device.cli("status", "--json").stdout)
    [entry] = [x for x in status["stacks"] if x["stack"] == s]
    assert entry["quarantined"]["revision"] == bad_rev
    evidence = entry["evidence"]
    assert (evidence["service"], evidence["exit_code"]) == ("app", 3)
    assert evidence["hook"].startswith("post_start[0] (sh -c") and evidence["hook"].endswith(
        "exited with status 3: cache is cold")
