"""The daemon's loopback HTTP endpoints: /healthz /readyz /status /metrics, and opt-in
``POST /hooks/git`` (a Git server's signed push webhook, for LAN setups).

Plain ``http.server`` in a daemon thread: a handful of routes do not need a
framework, and nothing here is reachable from outside unless the operator
binds it so. The webhook is only a hint: a valid one starts the normal, full
sync soon (rate-limited by the daemon); it never carries what gets applied.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gitops_edge.core.push import push_event, same_ref, webhook_authentic
from gitops_edge.errors import ConfigError

log = logging.getLogger("gitops_edge.http")

HOOK_PATH = "/hooks/git"
MAX_HOOK_BODY = 8 * 1024 * 1024  # push payloads with many commits run to megabytes; refuse beyond


class PushWebhook:
    """``POST /hooks/git`` from GitHub, Gitea/Forgejo or GitLab, checked against a shared secret.

    The secret file is read on every request, so rotating it needs no restart. A
    wrong or missing signature is 401 and starts nothing.
    """

    def __init__(self, secret_file: Path, ref: str, hint: Callable[[str | None, str], None]) -> None:
        self.secret_file, self.ref, self.hint = secret_file, ref, hint

    def __call__(self, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        """``headers``: lower-case names."""
        try:
            secret = self.secret_file.read_bytes().strip()
        except OSError as exc:
            log.warning("webhook: cannot read %s: %s", self.secret_file, exc.strerror)
            return 500, b"webhook secret unavailable\n"
        if not webhook_authentic(secret, headers, body):
            log.warning("webhook: rejected a request without a valid signature")
            return 401, b"bad or missing signature\n"
        if (headers.get("x-github-event") or headers.get("x-gitea-event")) == "ping":
            return 200, b"pong\n"
        event = push_event(body)
        if event is None:
            return 400, b"not a push event\n"
        if not same_ref(self.ref, event.ref):
            return 200, f"ignored: this device follows {self.ref}\n".encode()
        self.hint(event.revision, "webhook")
        return 202, b"sync scheduled\n"


class StatusServer:
    def __init__(
        self,
        listen: str,
        *,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        status: Callable[[], Mapping[str, object]],
        metrics: Callable[[], bytes],
        webhook: Callable[[Mapping[str, str], bytes], tuple[int, bytes]] | None = None,
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
                self._answer(code, ctype, body)

            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != HOOK_PATH or webhook is None:
                    self._answer(404, "text/plain", b"not found\n")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or "")
                except ValueError:
                    self._answer(411, "text/plain", b"Content-Length required\n")
                    return
                if not 0 <= length <= MAX_HOOK_BODY:
                    self.close_connection = True
                    self._answer(413, "text/plain", b"too large\n")
                    return
                body = self.rfile.read(length)
                try:
                    code, text = webhook({k.lower(): v for k, v in self.headers.items()}, body)
                except Exception as exc:  # a bug here must not kill the server
                    log.warning("%s failed: %s", HOOK_PATH, exc)
                    code, text = 500, b"error\n"
                self._answer(code, "text/plain", text)

            def _answer(self, code: int, ctype: str, body: bytes) -> None:
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
