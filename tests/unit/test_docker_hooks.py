"""The Docker adapter's side of hooks: the pre_stop label, the exec request, the output framing."""

from __future__ import annotations

from gitops_edge.adapters.docker import exec_output
from gitops_edge.adapters.docker import translate as t
from gitops_edge.adapters.docker.read import container_state
from gitops_edge.model.spec import ServiceHook, ServiceSpec, StackSpec

STACK = StackSpec("s", "s", "s/compose.yaml")
HOOKS = (ServiceHook(("sh", "-c", "sync; echo done"), "1000:1000", True, "/srv", (("A", "1"), ("B", None))),
         ServiceHook(("true",)))


def labels(spec: ServiceSpec) -> dict[str, str]:
    return t.container_labels(STACK, spec, image="app@sha256:0", image_id="sha256:1", config_hash="h", revision="r")


def test_pre_stop_hooks_travel_with_the_container() -> None:
    with_hooks = labels(ServiceSpec("web", "app:1", pre_stop=HOOKS))
    assert t.pre_stop_hooks(with_hooks) == HOOKS
    inspect = {"State": {"Status": "running"}, "Config": {"Labels": with_hooks}, "Name": "/s-web-1"}
    assert container_state(inspect).pre_stop == HOOKS
    # no hooks, no label (Compose's containers and ours look alike); post_start needs none
    assert t.EDGE_PRE_STOP not in labels(ServiceSpec("web", "app:1", post_start=HOOKS))
    for broken in ("", "{", "[{\"user\": \"x\"}]", "7"):
        assert t.pre_stop_hooks({t.EDGE_PRE_STOP: broken}) == ()


def test_the_exec_is_made_as_compose_makes_it() -> None:
    assert t.exec_create_args(HOOKS[0]) == {
        "cmd": ["sh", "-c", "sync; echo done"], "stdout": True, "stderr": True, "tty": False, "privileged": True,
        "user": "1000:1000", "environment": ["A=1", "B"], "workdir": "/srv",
    }
    assert t.exec_create_args(HOOKS[1]) == {
        "cmd": ["true"], "stdout": True, "stderr": True, "tty": False, "privileged": False, "user": "",
        "environment": None, "workdir": None,
    }


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def test_frames_are_unwrapped_whole_and_a_partial_one_waits() -> None:
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"partial")
    pending = bytearray(data[:-3])
    assert exec_output.take_frames(pending) == b"out\nerr\n"
    assert bytes(pending) == frame(1, b"partial")[:-3]
    pending += data[-3:]
    assert exec_output.take_frames(pending) == b"partial" and pending == bytearray()


def test_the_tail_keeps_the_last_lines_and_a_progress_bars_last_state() -> None:
    text = "".join(f"line {i}\n" for i in range(30)) + "\n  \n10%\r50%\r100%\r\n"
    assert exec_output.tail(text.encode()).splitlines() == [f"line {i}" for i in range(21, 30)] + ["100%"]
    assert len(exec_output.tail(b"x" * 10_000)) == exec_output.TAIL_CHARS
    assert exec_output.tail(b"\xff ok") == "\ufffd ok"
