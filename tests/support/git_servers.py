"""Real Git servers on loopback for source tests: smart HTTP and git://.

The HTTP server runs the real ``git http-backend`` as a CGI behind an
``Authorization`` check, and records which protocol-v2 commands each request
carried, so a test can tell an ``ls-remote`` (``ls-refs``) from a ``fetch``.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.net import free_port


class GitHttpServer:
    """``git http-backend`` over HTTP on 127.0.0.1, optionally requiring one header."""

    def __init__(self, project_root: Path, authorization: str | None) -> None:
        self.project_root = project_root
        self.authorization = authorization
        self.commands: list[str] = []  # "ls-refs", "fetch", or "info/refs" per request
        self.ls_refs: list[bytes] = []  # each ls-refs request body (pkt-lines), decompressed
        self.sent = 0  # response body bytes served by git http-backend
        self.rejected = 0
        # Answer with this status (429/503) instead of serving, optionally with Retry-After;
        # ``throttle_only`` limits it to one kind of request ("info/refs", "ls-refs", "fetch").
        self.throttle: int | None = None
        self.retry_after: str | None = None
        self.throttle_only: str | None = None
        self.throttled = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, repo: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repo}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve(b"")

            def do_POST(self) -> None:
                self._serve(self._body())

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        chunk = self.rfile.read(size)
                        self.rfile.readline()
                        if size == 0:
                            return data
                        data += chunk
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def _serve(self, body: bytes) -> None:
                if server.authorization is not None and (
                    self.headers.get("Authorization") != server.authorization
                ):
                    server.rejected += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                plain = body
                if self.headers.get("Content-Encoding") == "gzip":
                    plain = gzip.decompress(body)
                kind = None
                if b"command=fetch" in plain:
                    kind = "fetch"
                elif b"command=ls-refs" in plain:
                    kind = "ls-refs"
                elif self.command == "GET":
                    kind = "info/refs"
                if kind is not None:
                    server.commands.append(kind)
                if kind == "ls-refs":
                    server.ls_refs.append(plain)
                if server.throttle is not None and server.throttle_only in (None, kind):
                    server.throttled += 1
                    self.send_response(server.throttle)
                    if server.retry_after is not None:
                        self.send_header("Retry-After", server.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._cgi(body)

            def _cgi(self, body: bytes) -> None:
                parts = urlsplit(self.path)
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.project_root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": parts.path,
                    "QUERY_STRING": parts.query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_ADDR": "127.0.0.1",
                    "REMOTE_USER": "git",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                proc = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
                )
                head, _, payload = proc.stdout.partition(b"\r\n\r\n")
                status = 200
                headers: list[tuple[str, str]] = []
                for line in head.decode("latin-1").split("\r\n"):
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                server.sent += len(payload)

        return Handler


@contextmanager
def git_http_server(project_root: Path, authorization: str | None = None) -> Iterator[GitHttpServer]:
    server = GitHttpServer(project_root, authorization)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def git_daemon(base_path: Path, access_hook: Path | None = None) -> Iterator[str]:
    """``git daemon`` exporting every repository under ``base_path``; yields git://host:port.

    ``access_hook`` runs before every request (``git daemon --access-hook``).
    """
    port = free_port()
    log = base_path.parent / f"daemon-{port}.log"
    hook = [f"--access-hook={access_hook}"] if access_hook is not None else []
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base_path}",
             "--listen=127.0.0.1", f"--port={port}", *hook, str(base_path)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"git daemon did not start: {log.read_text()}") from None
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def silent_tcp_server() -> Iterator[int]:
    """Accepts connections and never answers: a remote that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = int(sock.getsockname()[1])
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        sock.close()
