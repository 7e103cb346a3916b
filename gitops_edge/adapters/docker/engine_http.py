"""A small read-only client of the Docker Engine API over its Unix socket (no docker SDK).

The reads of a sync where nothing changes (list containers, networks and
volumes, inspect a container or an image, engine info) are plain GETs; doing
them as HTTP/1.0 GETs on a plain socket keeps the docker SDK, requests and
urllib3 out of a process that changes nothing (the idle daemon's memory, a
``status`` or a no-change ``sync`` process's start-up), and ``http.client`` too,
which would import ``ssl`` and the ``email`` package for nothing. An HTTP/1.0
request gets an answer with no chunked encoding, ended by the engine closing the
connection (the body's length is still checked against ``Content-Length``). Writes and pulls still
use the SDK (``runtime.py``), imported on first use. Only ``unix://`` hosts are
served here; for others ``for_host`` returns None and the SDK does the reads too.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_HOST = "unix:///var/run/docker.sock"


class EngineHTTPError(Exception):
    """The engine answered with an error status (its ``message``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


MAX_ANSWER = 256 * 1024 * 1024  # an engine answer larger than this is not an answer


def _exchange(path: str, request: bytes, timeout: float) -> bytes:
    """Send ``request`` on the Unix socket ``path``; everything the engine sends until it closes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(request)
        chunks: list[bytes] = []
        size = 0
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER:
                raise OSError("bad answer from the engine: too large")
        return b"".join(chunks)
    finally:
        sock.close()


def parse_answer(raw: bytes) -> tuple[int, bytes]:
    """(status, body) of a whole HTTP/1.x answer; OSError when it is not one."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise OSError(f"bad answer from the engine: {lines[0][:80]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(body)
    length = headers.get("content-length")
    if length is not None and (not length.isdigit() or len(body) < int(length)):
        raise OSError("bad answer from the engine: cut short")
    return int(parts[1]), body if length is None else body[: int(length)]


def _unchunk(body: bytes) -> bytes:
    """Chunked transfer coding (not sent for HTTP/1.0 requests; decoded should an engine do so)."""
    out: list[bytes] = []
    while True:
        line, sep, body = body.partition(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise OSError("bad answer from the engine: broken chunk") from None
        if not sep or len(body) < size:
            raise OSError("bad answer from the engine: cut short")
        if size == 0:
            return b"".join(out)
        out.append(body[:size])
        body = body[size + 2:]


class EngineHTTP:
    def __init__(self, socket_path: str, timeout: float) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    @classmethod
    def for_host(cls, base_url: str | None, timeout: float) -> EngineHTTP | None:
        """For ``base_url`` (else ``$DOCKER_HOST``, else the default socket), if it is a Unix socket."""
        url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        if not url.startswith("unix://"):
            return None
        return cls("/" + url.removeprefix("unix://").lstrip("/"), timeout)

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``path`` (segments already quoted) -> its JSON; OSError when unreachable."""
        target = path + ("?" + urlencode(params) if params else "")
        request = f"GET {target} HTTP/1.0\r\nHost: docker\r\nUser-Agent: gitops-edge\r\n\r\n".encode()
        status, body = parse_answer(_exchange(self.socket_path, request, self.timeout))
        if status >= 400:
            try:
                message = str(json.loads(body).get("message") or body.decode(errors="replace"))
            except (ValueError, AttributeError):
                message = body.decode(errors="replace")
            raise EngineHTTPError(status, message.strip())
        return json.loads(body) if body else None

    # -- the reads the runtime needs ---------------------------------------------------
    def containers(self, *, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        params = {"all": "1" if all else "0"}
        if filters:
            params["filters"] = json.dumps(filters)
        return list(self.get("/containers/json", params) or [])

    def networks(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        return list(self.get("/networks", {"filters": json.dumps(filters)}) or [])

    def volumes(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        return dict(self.get("/volumes", {"filters": json.dumps(filters)}) or {})

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        return dict(self.get(f"/containers/{quote(container_id, safe='')}/json"))

    def inspect_image(self, ref: str) -> dict[str, Any]:
        return dict(self.get(f"/images/{quote(ref, safe='/:@')}/json"))

    def inspect_volume(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/volumes/{quote(name, safe='')}"))

    def info(self) -> dict[str, Any]:
        return dict(self.get("/info"))

    # -- waiting ------------------------------------------------------------------------
    def wait_event(self, filters: dict[str, list[str]], since: float, timeout_s: float) -> bool:
        """True as soon as the engine logs an event matching ``filters`` at or after ``since``
        (Unix time; events already logged since then are replayed, so none is missed between
        an inspection and this call), False when ``timeout_s`` passes first.

        One streaming GET on its own connection, closed on return: the socket read blocks
        (no polling), and ``until`` bounds the stream on the engine's side too.
        """
        timeout_s = max(0.0, timeout_s)
        params = {
            "since": f"{since:.9f}",
            "until": f"{time.time() + timeout_s + 1:.9f}",
            "filters": json.dumps(filters),
        }
        target = "/events?" + urlencode(params)
        request = f"GET {target} HTTP/1.0\r\nHost: docker\r\nUser-Agent: gitops-edge\r\n\r\n".encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
            sock.sendall(request)
            raw = b""
            while b"\r\n\r\n" not in raw:  # the engine sends the head at once, then events as they come
                chunk = sock.recv(65536)
                if not chunk or len(raw) > 65536:
                    raise OSError("bad answer from the engine: cut short")
                raw += chunk
            head, _, body = raw.partition(b"\r\n\r\n")
            status, _ = parse_answer(head + b"\r\n\r\n")
            if status >= 400:
                while chunk := sock.recv(65536):  # an error answer is short and ends with the connection
                    body += chunk
                raise EngineHTTPError(status, body.decode(errors="replace").strip())
            if body:
                return True  # an event is one JSON line, already here
            sock.settimeout(max(timeout_s, 0.001))
            try:
                return bool(sock.recv(65536))  # b"": the stream ended at ``until`` with no event
            except TimeoutError:
                return False
        finally:
            sock.close()
