"""A registry front with the OCI 1.1 referrers API, over a real socket, for discovery tests.

The test registry (distribution 2.8) has no referrers API. This server
forwards every request to it unchanged, except
``GET /v2/<name>/referrers/<digest>``, which it answers from ``referrers``
(an OCI image index per ``(name, digest)``; 404 when none is set, like a
registry without the API would not, so tests set what they need).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})(\?.*)?$")


class ReferrersFront:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # host:port of the real registry
        self.referrers: dict[tuple[str, str], list[dict[str, object]]] = {}
        self.asked: list[str] = []  # referrers paths requested, to prove the API was used
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:
                match = _REFERRERS.match(self.path)
                if match is None:
                    self._forward("GET")
                    return
                front.asked.append(self.path)
                index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                         "manifests": front.referrers.get((match["name"], match["digest"]), [])}
                body = json.dumps(index).encode()
                self.send_response(200)
                self.send_header("Content-Type", OCI_INDEX)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._forward("HEAD")

            def _forward(self, method: str) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                resp = requests.request(method, f"http://{front.upstream}{self.path}", headers=headers,
                                        timeout=30, allow_redirects=False)
                body = resp.content if method == "GET" else b""
                self.send_response(resp.status_code)
                for key in ("Content-Type", "Docker-Content-Digest", "Location", "WWW-Authenticate"):
                    if key in resp.headers:
                        self.send_header(key, resp.headers[key])
                self.send_header("Content-Length", str(len(resp.content) if method == "GET" else 0))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    @contextmanager
    def running(self) -> Iterator[ReferrersFront]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=10)
