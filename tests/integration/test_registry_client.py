"""The registry client against a tiny local fake: bearer and basic auth, timeouts, lying registries.

The fake is a ``http.server`` on 127.0.0.1 acting as token service and
registry at once; no Docker needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from gitops_edge.adapters.registry.client import RegistryClient
from gitops_edge.errors import RegistryAuthError, RegistryError, RegistryProtocolError
from gitops_edge.model.trust import RegistriesConfig

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {}, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
BASIC = "Basic " + base64.b64encode(b"robot:pa55").decode()


class Fake(ThreadingHTTPServer):
    mode = "bearer"  # bearer | basic | lying | huge
    token_calls: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Fake

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.do_GET(body=False)

    def do_GET(self, body: bool = True) -> None:
        url = urlparse(self.path)
        auth = self.headers.get("Authorization", "")
        if url.path == "/token":
            scope = parse_qs(url.query)["scope"][0]
            self.server.token_calls.append(scope)
            if auth != BASIC:
                return self._send(401, b"{}")
            return self._send(200, json.dumps({"token": f"tok {scope}"}).encode())
        name = url.path.removeprefix("/v2/").split("/manifests/")[0]
        mode = self.server.mode
        if mode == "bearer" and auth != f"Bearer tok repository:{name}:pull":
            realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
            return self._send(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake"'})
        if mode == "basic" and auth != BASIC:
            return self._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
        content = MANIFEST
        if mode == "lying":
            content = MANIFEST + b" "
        if mode == "huge":
            content = b" " * (5 * 1024 * 1024)
        headers = {"Docker-Content-Digest": DIGEST, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        self._send(200, content if body else b"", headers, length=len(content))

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(body)


@pytest.fixture
def fake() -> Iterator[Fake]:
    server = Fake(("127.0.0.1", 0), Handler)
    server.token_calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client_with(tmp_path: Path, auths: dict[str, object] | None, fake: Fake) -> RegistryClient:
    config = tmp_path / "config.json"
    if auths is not None:
        config.write_text(json.dumps({"auths": auths}))
    return RegistryClient(RegistriesConfig(auth_file=config), timeout_s=5)


def host(fake: Fake) -> str:
    return f"127.0.0.1:{fake.server_address[1]}"


def test_bearer_flow_uses_config_json_credentials_and_reuses_the_token(fake: Fake, tmp_path: Path) -> None:
    client = client_with(tmp_path, {host(fake): {"auth": base64.b64encode(b"robot:pa55").decode()}}, fake)
    assert client.resolve(f"{host(fake)}/edge/app:v1") == DIGEST
    assert client.manifest(f"{host(fake)}/edge/app", "v1").body == MANIFEST
    assert fake.token_calls == ["repository:edge/app:pull"]  # one token, reused


def test_bearer_flow_with_wrong_or_missing_credentials_is_a_lasting_auth_error(fake: Fake, tmp_path: Path) -> None:
    wrong = client_with(tmp_path, {host(fake): {"username": "robot", "password": "nope"}}, fake)
    with pytest.raises(RegistryAuthError, match="token service refused the credentials") as info:
        wrong.resolve(f"{host(fake)}/edge/app:v1")
    assert not info.value.retryable and info.value.exit_code == 4
    with pytest.raises(RegistryAuthError, match="refused anonymous access"):
        client_with(tmp_path / "none", None, fake).resolve(f"{host(fake)}/edge/app:v1")


def test_basic_challenge(fake: Fake, tmp_path: Path) -> None:
    fake.mode = "basic"
    good = client_with(tmp_path, {host(fake): {"username": "robot", "password": "pa55"}}, fake)
    assert good.resolve(f"{host(fake)}/edge/app:v1") == DIGEST
    (tmp_path / "none").mkdir()
    with pytest.raises(RegistryAuthError, match="requires credentials"):
        client_with(tmp_path / "none", None, fake).resolve(f"{host(fake)}/edge/app:v1")


def test_content_not_matching_its_digest_is_refused(fake: Fake, tmp_path: Path) -> None:
    fake.mode = "lying"
    client = client_with(tmp_path, None, fake)
    with pytest.raises(RegistryProtocolError, match="content hashes to"):
        client.manifest(f"{host(fake)}/edge/app", "v1")
    with pytest.raises(RegistryProtocolError, match="does not match digest"):
        client.manifest(f"{host(fake)}/edge/app", DIGEST)


def test_oversized_manifest_is_refused(fake: Fake, tmp_path: Path) -> None:
    fake.mode = "huge"
    with pytest.raises(RegistryProtocolError, match="byte limit"):
        client_with(tmp_path, None, fake).manifest(f"{host(fake)}/edge/app", "v1")


def test_a_registry_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        client = RegistryClient(timeout_s=0.5)
        with pytest.raises(RegistryError, match=r"did not answer within 0\.5s") as info:
            client.resolve(f"127.0.0.1:{listener.getsockname()[1]}/edge/app:v1")
        assert info.value.retryable
