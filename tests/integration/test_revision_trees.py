"""Issue 10: containers bind immutable revision trees, never the Git clone.

A commit that changes only a bind-mounted file recreates the service through
the health gate; a rolled-back container keeps reading the old file even
after a restart; no bind source is in the clone; unused trees go.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.integration.agent_harness import Device, assert_clean_failure
from tests.support.net import wait_for

# The service refuses to start, and its probe fails, unless the mounted config says "good".
COMPOSE = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "grep -q good /etc/app.conf || exit 3; trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: unless-stopped
    volumes:
      - ./app.conf:/etc/app.conf:ro
      - ../{s}-shared:/shared:ro
    healthcheck:
      test: ["CMD", "grep", "-q", "good", "/etc/app.conf"]
      interval: 1s
      timeout: 2s
      retries: 2
  side:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: unless-stopped
"""


def binds(c: Any) -> list[str]:
    c.reload()
    return [m["Source"] for m in c.attrs["Mounts"] if m["Type"] == "bind"]


def read_conf(c: Any) -> str:
    code, out = c.exec_run(["cat", "/etc/app.conf"])
    assert code == 0, out
    return str(out.decode()).strip()


def healthy(c: Any) -> bool:
    c.reload()
    return c.status == "running" and c.attrs["State"].get("Health", {}).get("Status") == "healthy"


def trees_on_disk(state: Path) -> set[tuple[str, str]]:
    base = state / "trees"
    return {(r.name, s.name) for r in base.iterdir() if not r.name.startswith(".") for s in r.iterdir()}


def tree_snapshot(state: Path) -> dict[str, tuple[int, int]]:
    """Every path under the trees with its inode and mtime: any write shows."""
    out = {}
    for dirpath, dirs, files in os.walk(state / "trees"):
        for p in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
            st = os.lstat(p)
            out[p] = (st.st_ino, st.st_mtime_ns)
    return out


def test_config_only_commits_are_gated_and_rollbacks_keep_their_files(
    device: Device, stack_name: str, test_images: dict[str, str]
) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    state = device.workdir / "state"
    compose = COMPOSE.format(image=test_images["v1"], s=s)
    r1 = device.commit({f"{s}/compose.yaml": compose, f"{s}/app.conf": "good 1\n",
                        f"{s}-shared/notes.txt": "shared\n"})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    web1 = device.containers(s)[f"{s}-web-1"]
    side1 = device.containers(s)[f"{s}-side-1"]
    assert read_conf(web1) == "good 1"

    # every bind source is in the tree of its revision, none in the clone, no .git anywhere
    sources = binds(web1)
    assert len(sources) == 2
    for src in sources:
        assert src.startswith(f"{state / 'trees' / r1 / s}/"), src
        assert not src.startswith(str(state / "source"))
        assert not [d for d, dirs, _ in os.walk(src) if ".git" in dirs]
    conf_host = Path(next(x for x in sources if x.endswith("app.conf")))
    assert conf_host.stat().st_mode & 0o777 == 0o444
    assert conf_host.parent.stat().st_mode & 0o777 == 0o555
    code, out = web1.exec_run(["cat", "/shared/notes.txt"])
    assert (code, out) == (0, b"shared\n")

    # a poll with nothing new builds nothing and removes nothing: the trees are not written
    before = tree_snapshot(state)
    out = device.cli("sync")
    assert out.returncode == 0 and "unchanged" in out.stdout, out.stdout + out.stderr
    assert tree_snapshot(state) == before

    # a commit that changes only the mounted file: a recreate through the gate, naming the file
    r2 = device.commit({f"{s}/app.conf": "good 2\n"}, "config only")
    plan = device.cli("plan")
    assert plan.returncode == 0, plan.stderr
    assert f"recreate web (start-first): mounted content changed: devices/d1/{s}/app.conf" in plan.stdout, plan.stdout
    assert "keep side" in plan.stdout
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    web2 = device.containers(s)[f"{s}-web-1"]
    assert web2.id != web1.id
    assert device.containers(s)[f"{s}-side-1"].id == side1.id  # mounts nothing: untouched
    assert read_conf(web2) == "good 2"
    assert all(src.startswith(f"{state / 'trees' / r2 / s}/") for src in binds(web2))

    # a bad config-only commit fails the gate and is rolled back...
    r3 = device.commit({f"{s}/app.conf": "broken\n"}, "bad config")
    out = device.cli("sync")
    assert_clean_failure(out, 1, "web", "rolled back")
    restored = device.containers(s)[f"{s}-web-1"]
    assert restored.id == web2.id
    wait_for(lambda: healthy(restored), 30, "the restored container to be healthy")
    # ...and the restored container still reads the old file after a restart: its bind is r2's tree
    restored.restart(timeout=5)
    wait_for(lambda: healthy(restored), 30, "the restored container to be healthy after a restart")
    assert read_conf(restored) == "good 2"
    restored.reload()
    assert restored.attrs["RestartCount"] == 0 and restored.status == "running"

    # the quarantined revision's tree stays while the device follows it (no rebuild per poll) ...
    assert (r3, s) in trees_on_disk(state)
    # ... and goes once a newer commit replaces it and nothing binds it
    r4 = device.commit({f"{s}/app.conf": "good 4\n"}, "fixed")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    on_disk = trees_on_disk(state)
    assert (r3, s) not in on_disk
    assert {(r1, s), (r2, s), (r4, s)} <= on_disk  # good revisions: `gitops-edge rollback` needs them
    assert read_conf(device.containers(s)[f"{s}-web-1"]) == "good 4"
    assert not [p for p in (state / "trees").iterdir() if p.name.startswith(".")]  # no temp or trash left

    # a manual rollback binds the older tree again: the old file comes back with the old revision
    out = device.cli("rollback", s)
    assert out.returncode == 0, out.stderr
    back = device.containers(s)[f"{s}-web-1"]
    wait_for(lambda: healthy(back), 30, "the rolled-back container to be healthy")
    assert read_conf(back) == "good 2"
    assert all(src.startswith(f"{state / 'trees' / r2 / s}/") for src in binds(back))


def test_a_broken_stack_beside_it_does_not_send_a_valid_stack_to_the_clone(
    device: Device, stack_name: str, test_images: dict[str, str]
) -> None:
    """Stacks are independent (issue 11): the valid one is applied while the other is invalid,
    and it too binds from its revision tree, never from the Git clone."""
    s, bad = stack_name, f"{stack_name}-bad"
    device.cleanup += [s, bad]  # type: ignore[attr-defined]
    state = device.workdir / "state"
    rev = device.commit({
        f"{s}/compose.yaml": COMPOSE.format(image=test_images["v1"], s=s),
        f"{s}/app.conf": "good 1\n",
        f"{s}-shared/notes.txt": "shared\n",
        f"{bad}/compose.yaml": "services:\n  web:\n    image: [not, a, string]\n",
    })
    out = device.cli("sync")
    assert out.returncode == 2, out.stdout + out.stderr  # the invalid stack is the worst outcome here
    web = device.containers(s)[f"{s}-web-1"]
    sources = binds(web)
    assert sources and all(src.startswith(f"{state / 'trees' / rev / s}/") for src in sources), sources
    assert not device.containers(bad)
