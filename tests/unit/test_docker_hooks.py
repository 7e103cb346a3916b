"""The Docker adapter's side of hooks: the pre_stop label, the exec request, the output framing."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace
from typing import Any

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


def upgraded(*frames: bytes) -> tuple[socket.socket, Any]:
    """The engine's end, and the SDK's socket after http.client read the 101 headers (and, in the same
    read, whatever followed them) through its buffered reader."""
    engine, ours = socket.socketpair()
    headers = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
    engine.sendall(headers + b"".join(frames))
    reader = ours.makefile("rb")
    while reader.readline() not in (b"\r\n", b""):
        pass
    sdk_socket = reader.raw  # what docker-py hands over: the SocketIO under the buffer
    sdk_socket._response = SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=reader)))
    return engine, sdk_socket


def test_output_that_came_with_the_headers_is_not_lost() -> None:
    """A quick hook's whole output can arrive with the headers (seen under load): it is in the buffer."""
    engine, sock = upgraded(frame(2, b"cache is cold\n"))
    engine.sendall(frame(1, b"more\n"))
    engine.close()
    assert exec_output.read_until(sock, time.monotonic() + 30) == b"cache is cold\nmore\n"


def test_a_quiet_exec_is_read_only_until_the_deadline() -> None:
    engine, sock = upgraded(frame(1, b"started\n"))
    try:  # the engine end stays open and silent: only the deadline ends the read
        assert exec_output.read_until(sock, time.monotonic() + 0.2) == b"started\n"
    finally:
        engine.close()
