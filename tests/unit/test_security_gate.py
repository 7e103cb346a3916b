"""The security step: findings located as file:line: key; ownership checks against what runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_edge.engine.security_gate import check_ownership, check_policy
from gitops_edge.errors import TrustError
from gitops_edge.model.observed import ObservedContainer, ObservedState
from gitops_edge.model.spec import DesiredState, Mount, ServiceSpec, StackSpec
from gitops_edge.model.trust import SecurityPolicy
from gitops_edge.wiring import compose_key_lines

COMPOSE = """services:
  web:
    image: nginx:1
    volumes:
      - ./conf:/conf
      - /etc:/host-etc
    privileged: true
"""


def desired(root: Path, **svc: object) -> DesiredState:
    (root / "stacks/web").mkdir(parents=True, exist_ok=True)
    (root / "stacks/web/compose.yaml").write_text(COMPOSE)
    service = ServiceSpec(name="web", image="nginx:1", **svc)  # type: ignore[arg-type]
    return DesiredState("r", (StackSpec("web", "stacks/web", "stacks/web/compose.yaml", (service,)),))


def test_a_refusal_names_file_line_key_and_setting(tmp_path: Path) -> None:
    state = desired(tmp_path, mounts=(Mount("bind", "/conf", f"{tmp_path}/stacks/web/conf"),
                                      Mount("bind", "/host-etc", "/etc")), privileged=True)  # fmt: skip
    with pytest.raises(TrustError) as info:
        check_policy(state, SecurityPolicy(), tmp_path, compose_key_lines)
    assert info.value.exit_code == 3
    assert str(info.value).startswith(
        "stacks/web/compose.yaml:7: services.web.privileged: privileged is not allowed by the device security "
        "policy: every device and capability of the host (allow with security.allow_privileged) (and 1 more)"
    )
    with pytest.raises(TrustError, match=r"compose.yaml:6: services.web.volumes\[1\]: bind mount of /etc "):
        check_policy(state, SecurityPolicy(allow_privileged=True), tmp_path, compose_key_lines)
    check_policy(state, SecurityPolicy(allow_privileged=True, allowed_bind_paths=("/etc",)), tmp_path)


def _hand_made(name: str = "web-web-1", stack: str = "web", managed: bool = False) -> ObservedContainer:
    return ObservedContainer(id="c1", name=name, stack=stack, service="web", number=1, status="running",
                             managed=managed)  # fmt: skip


def test_a_hand_made_project_is_adopted_only_when_the_device_says_so(tmp_path: Path) -> None:
    state, observed = desired(tmp_path), ObservedState((_hand_made(),))
    with pytest.raises(TrustError, match=r"compose.yaml:1: services: .*allow with security.adopt_projects"):
        check_ownership(state, observed, (), SecurityPolicy(), tmp_path, compose_key_lines)
    check_ownership(state, observed, (), SecurityPolicy(adopt_projects=("web",)), tmp_path, compose_key_lines)
    check_ownership(state, observed, ("web",), SecurityPolicy(), tmp_path, compose_key_lines)  # the agent's own stack
    check_ownership(state, ObservedState((_hand_made(managed=True),)), (), SecurityPolicy(), tmp_path)


def test_a_container_name_of_another_project_is_refused(tmp_path: Path) -> None:
    state = desired(tmp_path, container_name="db")
    with pytest.raises(TrustError, match=r"container_name db .*compose project other"):
        check_ownership(state, ObservedState((_hand_made("db", "other"),)), ("web",), SecurityPolicy(), tmp_path)
    check_ownership(state, ObservedState((_hand_made("db", "web", True),)), ("web",), SecurityPolicy(), tmp_path)


def test_networks_belong_to_a_stack_by_label_not_by_name() -> None:
    observed = ObservedState(networks=("app_default", "app_x_default"),
                             network_projects=(("app_default", "app"), ("app_x_default", "app_x")))  # fmt: skip
    assert observed.networks_of("app") == ("app_default",)
    assert observed.networks_of("app_x") == ("app_x_default",)


def test_without_a_line_map_the_key_path_still_says_where(tmp_path: Path) -> None:
    with pytest.raises(TrustError) as info:
        check_policy(desired(tmp_path, privileged=True), SecurityPolicy(), tmp_path)
    assert str(info.value).startswith("stacks/web/compose.yaml: services.web.privileged: privileged is not allowed")


def test_a_container_name_held_by_a_container_nobody_labelled_is_refused(tmp_path: Path) -> None:
    state = desired(tmp_path, container_name="db")
    owners = {"db": ""}.get  # `docker run --name db`: no compose project
    with pytest.raises(TrustError, match=r"container_name db .*no compose project"):
        check_ownership(state, ObservedState(), ("web",), SecurityPolicy(), tmp_path, name_owner=owners)
    check_ownership(state, ObservedState(), ("web",), SecurityPolicy(), tmp_path, name_owner={}.get)
