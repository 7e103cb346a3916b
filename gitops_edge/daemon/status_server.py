"""The daemon's loopback HTTP endpoints: /healthz /readyz /status /metrics.

Plain ``http.server`` in a daemon thread: four read-only routes do not need a
framework, and nothing here is reachable from outside unless the operator
binds it so.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gitops_edge.errors import ConfigError

log = logging.getLogger("gitops_edge.http")


class StatusServer:
    def __init__(
        self,
        listen: str,
        *,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        status: Callable[[], Mapping[str, object]],
        metrics: Callable[[], bytes],
    ) -> None:
        host, _, port = listen.rpartition(":")
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/healthz": lambda: (200, "text/plain", b"ok\n") if healthy() else (503, "text/plain", b"stalled\n"),
            "/readyz": lambda: (200, "text/plain", b"ready\n") if ready() else (503, "text/plain", b"not ready\n"),
            "/status": lambda: (200, "application/json", json.dumps(status(), indent=2).encode()),
            "/metrics": lambda: (200, "text/plain; version=0.0.4; charset=utf-8", metrics()),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    code, ctype, body = 404, "text/plain", b"not found\n"
                else:
                    try:
                        code, ctype, body = route()
                    except Exception as exc:  # a broken probe must not kill the server
                        log.warning("%s failed: %s", self.path, exc)
                        code, ctype, body = 500, "text/plain", f"error: {exc}\n".encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http %s", format % args)

        try:
            self.server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
        except OSError as exc:
            raise ConfigError(f"status.listen {listen}: {exc.strerror}") from None
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="status-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
