"""A small read-only client of the Docker Engine API over its Unix socket (no docker SDK).

The reads of a sync where nothing changes (list containers, networks and
volumes, inspect a container or an image, engine info) are plain GETs; doing
them with ``http.client`` keeps the docker SDK, requests and urllib3 out of a
process that changes nothing (the idle daemon's memory, a ``status`` or a
no-change ``sync`` process's start-up). Writes, pulls and event streams still
use the SDK (``runtime.py``), imported on first use. Only ``unix://`` hosts are
served here; for others ``for_host`` returns None and the SDK does the reads too.
"""

from __future__ import annotations

import http.client
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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


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
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", path + ("?" + urlencode(params) if params else ""))
            resp = conn.getresponse()
            body = resp.read()
        except http.client.HTTPException as exc:
            raise OSError(f"bad answer from the engine: {exc}") from None
        finally:
            conn.close()
        if resp.status >= 400:
            try:
                message = str(json.loads(body).get("message") or body.decode(errors="replace"))
            except (ValueError, AttributeError):
                message = body.decode(errors="replace")
            raise EngineHTTPError(resp.status, message.strip())
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
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", "/events?" + urlencode(params))
            resp = conn.getresponse()
            if resp.status >= 400:
                raise EngineHTTPError(resp.status, resp.read().decode(errors="replace").strip())
            if conn.sock is not None:
                conn.sock.settimeout(max(timeout_s, 0.001))
            try:
                return bool(resp.readline())  # an event is one JSON line; b"" is the stream's end
            except TimeoutError:
                return False
        except http.client.HTTPException as exc:
            raise OSError(f"bad answer from the engine: {exc}") from None
        finally:
            conn.close()
