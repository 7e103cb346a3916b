"""Engine list/inspect responses -> observed model, and image reference rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gitops_edge.adapters.docker import read as docker_read
from gitops_edge.core import image_ref


@pytest.mark.parametrize(
    ("status", "health"),
    [
        ("Up 3 seconds (healthy)", "healthy"),
        ("Up 2 minutes (unhealthy)", "unhealthy"),
        ("Up 1 second (health: starting)", "starting"),
        ("Up 5 minutes", None),
        ("", None),
    ],
)
def test_health_from_status(status: str, health: str | None) -> None:
    assert docker_read.health_from_status(status) == health


def summary(**labels: str) -> dict[str, object]:
    base = {
        "com.docker.compose.project": "demo",
        "com.docker.compose.service": "web",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "False",
    }
    base.update(labels)
    return {
        "Id": "abcdef0123456789",
        "Names": ["/other/alias", "/demo-web-1"],
        "Labels": base,
        "State": "running",
        "Status": "Up 4 seconds (healthy)",
    }


def test_observed_container_from_summary() -> None:
    oc = docker_read.observed_container(
        summary(**{"io.gitops-edge.image": "r@sha256:1", "io.gitops-edge.config-hash": "h",
                   "io.gitops-edge.revision": "rev"}),
        restart_count=2,
    )
    assert oc is not None
    assert (oc.name, oc.stack, oc.service, oc.number) == ("demo-web-1", "demo", "web", 1)
    assert (oc.status, oc.health, oc.restart_count) == ("running", "healthy", 2)
    assert (oc.image, oc.config_hash, oc.revision) == ("r@sha256:1", "h", "rev")
    assert oc.managed and not oc.kept


def test_kept_container_is_recognized_by_its_name() -> None:
    kept = dict(summary(), Names=["/demo-web-1-gitops-edge-kept"])
    oc = docker_read.observed_container(kept, restart_count=0)
    assert oc is not None and oc.kept and oc.service == "web"


def test_compose_created_container_is_unmanaged_and_oneoff_skipped() -> None:
    oc = docker_read.observed_container(summary())
    assert oc is not None and not oc.managed and not oc.kept and oc.config_hash is None
    assert docker_read.observed_container(summary(**{"com.docker.compose.oneoff": "True"})) is None


def test_container_state_from_inspect() -> None:
    inspect = {
        "RestartCount": 3,
        "State": {
            "Status": "running",
            "ExitCode": 0,
            "OOMKilled": False,
            "StartedAt": "2026-01-01T00:00:00.123456789Z",
            "Health": {
                "Status": "unhealthy",
                "Log": [
                    {"ExitCode": 1, "Output": "first failure"},
                    {"ExitCode": 1, "Output": "  connection refused\n"},
                ],
            },
        },
    }
    now = datetime(2026, 1, 1, 0, 0, 10, 123456, tzinfo=UTC)
    st = docker_read.container_state(inspect, now=now)
    assert (st.status, st.health, st.restart_count) == ("running", "unhealthy", 3)
    assert st.running_for_s == pytest.approx(10.0)
    assert st.health_log == "connection refused"


def test_container_state_exited_no_healthcheck() -> None:
    st = docker_read.container_state(
        {"State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True, "StartedAt": "0001-01-01T00:00:00Z"}}
    )
    assert (st.status, st.health, st.exit_code, st.oom_killed, st.running_for_s) == (
        "exited", None, 137, True, 0.0)


@pytest.mark.parametrize(
    ("ref", "repo", "tag", "digest"),
    [
        ("nginx", "nginx", None, None),
        ("nginx:1.25", "nginx", "1.25", None),
        ("127.0.0.1:5055/edge/app:v1", "127.0.0.1:5055/edge/app", "v1", None),
        ("127.0.0.1:5055/edge/app", "127.0.0.1:5055/edge/app", None, None),
        ("reg:5000/a/b:t@sha256:ff", "reg:5000/a/b", "t", "sha256:ff"),
    ],
)
def test_parse_reference(ref: str, repo: str, tag: str | None, digest: str | None) -> None:
    assert image_ref.parse(ref) == image_ref.ImageRef(repo, tag, digest)


def test_familiar_and_repo_digest_matching() -> None:
    assert image_ref.familiar("docker.io/library/nginx") == "nginx"
    assert image_ref.familiar("docker.io/grafana/grafana") == "grafana/grafana"
    assert image_ref.familiar("127.0.0.1:5055/edge/app") == "127.0.0.1:5055/edge/app"
    digests = ["other/x@sha256:00", "nginx@sha256:11"]
    assert image_ref.repo_digest_for("docker.io/library/nginx", digests) == "docker.io/library/nginx@sha256:11"
    assert image_ref.repo_digest_for("redis", digests) is None


def test_is_pinned() -> None:
    assert image_ref.is_pinned("a/b@sha256:00")
    assert image_ref.is_pinned("sha256:0123")
    assert not image_ref.is_pinned("a/b:v1")


def test_containers_digest_sees_what_can_change_under_an_id_and_ignores_uptime() -> None:
    def listed(**over: object) -> dict[str, object]:
        return {"Id": "c1", "State": "running", "Status": "Up 3 minutes (healthy)", "Names": ["/demo-web-1"],
                "ImageID": "sha256:aa", "Labels": {"com.docker.compose.project": "demo"}, **over}

    other = listed(Id="c2", Names=["/demo-db-1"])
    base = docker_read.containers_digest([listed(), other])
    assert docker_read.containers_digest([other, listed()]) == base  # list order does not count
    assert docker_read.containers_digest([listed(Status="Up 4 hours (healthy)"), other]) == base
    changed = [
        [other],  # removed
        [listed(), other, {**other, "Id": "c3"}],  # added
        [listed(Id="c9"), other],  # replaced (a new image or new labels is a new container)
        [listed(State="exited", Status="Exited (0) 1 second ago"), other],  # stopped
        [listed(Status="Up 3 minutes (unhealthy)"), other],  # turned unhealthy
        [listed(Names=["/renamed"]), other],  # renamed by hand
    ]
    assert len({base, *(docker_read.containers_digest(c) for c in changed)}) == len(changed) + 1
