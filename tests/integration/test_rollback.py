"""Issue 3: a bad commit undoes itself, the old containers serve again."""

from __future__ import annotations

import json
import time

from gitops_edge.demo import tinyimage
from gitops_edge.model.evidence import FAILED_SUFFIX
from tests.integration.agent_harness import Device, assert_clean_failure
from tests.support.net import free_port

GOOD = json.dumps(tinyimage.SERVE)  # a YAML flow sequence for `command:`
CRASH = '["sh", "-c", "sleep 0.5; exit 3"]'
UNHEALTHY_PROBE = '["CMD", "sh", "-c", "exit 1"]'
HEALTHY_PROBE = '["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]'


def stack(image: str, *, command: str = GOOD, probe: str = HEALTHY_PROBE, restart: str = "unless-stopped") -> str:
    return f"""\
services:
  db:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: {restart}
  web:
    image: {image}
    command: {command}
    restart: {restart}
    depends_on: [db]
    healthcheck:
      test: {probe}
      interval: 1s
      timeout: 2s
      retries: 2
"""


def snapshot(dev: Device, s: str) -> dict[str, tuple[str, str, str]]:
    """name -> (id, status, restart policy), without a container a failed gate set aside for its logs"""
    out = {}
    for name, c in dev.containers(s).items():
        if name.endswith(FAILED_SUFFIX):
            continue
        c.reload()
        out[name] = (c.id, c.status, c.attrs["HostConfig"]["RestartPolicy"]["Name"])
    return out


def test_crash_loop_rolls_back_fast_and_is_quarantined(device: Device, stack_name: str,
                                                       test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.health = "{timeout: 60s, stable_for: 2s}"
    device.commit({"README.md": "d1\n", f"{s}/compose.yaml": stack(test_images["v1"])})
    assert device.cli("sync").returncode == 0
    good = snapshot(device, s)
    assert {v[1] for v in good.values()} == {"running"}

    bad_rev = device.commit({f"{s}/compose.yaml": stack(test_images["v2"], command=CRASH)}, "crashing release")
    t0 = time.monotonic()
    out = device.cli("sync")
    took = time.monotonic() - t0
    assert_clean_failure(out, 1, "web", "rolled back")
    assert "exited with code 3" in out.stderr or "crash loop" in out.stderr
    assert took < 30, f"a crash loop must be caught long before the 60 s timeout (took {took:.1f}s)"
    after = snapshot(device, s)
    # the very same containers serve again, under their names, with their restart policies
    assert after == good

    st = device.status()
    [entry] = [x for x in st["stacks"] if x["stack"] == s]
    assert entry["quarantined"]["revision"] == bad_rev

    # the same commit again: skipped quickly, nothing touched
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert "quarantined" in out.stdout
    assert snapshot(device, s) == good
    failed = device.containers(s)[f"{s}-web-1{FAILED_SUFFIX}"]
    assert failed.status == "exited" and failed.attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert "exit" in failed.logs().decode() or failed.attrs["State"]["ExitCode"] == 3

    # a newer good commit deploys normally, and the failed container of the last one goes
    device.commit({f"{s}/compose.yaml": stack(test_images["v2"])}, "fixed")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr + out.stdout
    now = snapshot(device, s)
    assert set(now) == set(good)
    assert now[f"{s}-web-1"][0] != good[f"{s}-web-1"][0]
    assert now[f"{s}-db-1"][0] != good[f"{s}-db-1"][0]  # image changed for both

    assert not [n for n in device.containers(s) if n.endswith(FAILED_SUFFIX)]

    hist = json.loads(device.cli("history", "--json").stdout)
    assert [h["outcome"] for h in hist[:4]] == ["applied", "skipped", "rolled_back", "applied"]  # newest first
    rolled = hist[2]
    assert rolled["actions"] and all(a.endswith("(rolled back)") for a in rolled["actions"]), rolled
    [ev] = rolled["evidence"]
    # restarted by its policy, the container may already run again: then its exit code is not known
    assert ev["service"] == "web" and ev["exit_code"] in (3, None), ev


def test_unhealthy_release_rolls_back_with_reason(device: Device, stack_name: str,
                                                 test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.health = "{timeout: 60s, stable_for: 1s}"
    device.commit({"README.md": "d1\n", f"{s}/compose.yaml": stack(test_images["v1"])})
    assert device.cli("sync").returncode == 0
    good = snapshot(device, s)

    device.commit({f"{s}/compose.yaml": stack(test_images["v2"], probe=UNHEALTHY_PROBE)}, "bad probe")
    out = device.cli("sync")
    assert_clean_failure(out, 1, "service web failed the health gate", "unhealthy")
    assert snapshot(device, s) == good

    # retry clears the quarantine: the next sync tries (and fails) again
    assert device.cli("retry", s).returncode == 0
    out = device.cli("sync")
    assert out.returncode == 1
    assert snapshot(device, s) == good


def test_manual_rollback_to_previous_good(device: Device, stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.commit({"README.md": "d1\n", f"{s}/compose.yaml": stack(test_images["v1"])})
    assert device.cli("sync").returncode == 0
    v1 = snapshot(device, s)
    device.commit({f"{s}/compose.yaml": stack(test_images["v2"])}, "v2")
    assert device.cli("sync").returncode == 0

    out = device.cli("rollback", s)
    assert out.returncode == 0, out.stderr
    web = device.containers(s)[f"{s}-web-1"]
    assert web.labels["io.gitops-edge.image"].startswith("127.0.0.1:5055/edge/app@sha256:")
    assert web.image.id == device.client.images.get(test_images["v1"]).id
    assert set(snapshot(device, s)) == set(v1)
    # and the next sync leaves it there while Git still points at v2
    out = device.cli("sync")
    assert out.returncode == 0
    assert device.containers(s)[f"{s}-web-1"].image.id == device.client.images.get(test_images["v1"]).id


def one_web(image: str, command: str, ports: str = "") -> str:
    return f"""\
services:
  web:
    image: {image}
    command: {command}
    restart: unless-stopped
{ports}    healthcheck:
      test: {HEALTHY_PROBE}
      interval: 1s
      retries: 2
"""


def started_at(dev: Device, name: str) -> str:
    c = dev.client.containers.get(name)
    return str(c.attrs["State"]["StartedAt"])


def test_start_first_old_container_never_stops_for_a_bad_release_stop_first_does(
    device: Device, stack_name: str, test_images: dict[str, str]
) -> None:
    fixed_port = f"    ports: ['127.0.0.1:{free_port()}:8080']\n"
    free, pinned = stack_name + "a", stack_name + "b"
    device.cleanup += [free, pinned]  # type: ignore[attr-defined]
    device.commit({"README.md": "d\n",
                   f"{free}/compose.yaml": one_web(test_images["v1"], GOOD),
                   f"{pinned}/compose.yaml": one_web(test_images["v1"], GOOD, fixed_port)})
    assert device.cli("sync").returncode == 0
    before = {s: started_at(device, f"{s}-web-1") for s in (free, pinned)}

    device.commit({f"{free}/compose.yaml": one_web(test_images["v2"], CRASH),
                   f"{pinned}/compose.yaml": one_web(test_images["v2"], CRASH, fixed_port)}, "bad")
    out = device.cli("sync")
    assert out.returncode == 1, out.stderr
    assert f"{free}:\n  recreate web (start-first): command changed" in out.stdout
    assert f"{pinned}:\n  recreate web: command changed" in out.stdout
    # no fixed port: the old container served throughout and was never stopped
    assert started_at(device, f"{free}-web-1") == before[free]
    # a fixed host port forbids two at once: stop-first, so the old one was restarted by the rollback
    assert started_at(device, f"{pinned}-web-1") != before[pinned]
    for s in (free, pinned):
        cs = device.containers(s)
        assert [c.status for n, c in cs.items() if not n.endswith(FAILED_SUFFIX)] == ["running"]
        # the failed one stays stopped for `docker logs`, until the next update of the stack
        assert [c.status for n, c in cs.items() if n.endswith(FAILED_SUFFIX)] == ["exited"]
