"""Registry naming, scheme choice, WWW-Authenticate parsing and config.json credential lookup."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gitops_edge.adapters.registry.auth import (
    Credentials,
    RegistryAuthError,
    credentials_for,
    load_docker_config,
    parse_challenge,
)
from gitops_edge.adapters.registry.names import canonical, scheme_for, split_repository


@pytest.mark.parametrize("repository, host, path", [
    ("nginx", "registry-1.docker.io", "library/nginx"),
    ("acme/app", "registry-1.docker.io", "acme/app"),
    ("docker.io/nginx", "registry-1.docker.io", "library/nginx"),
    ("index.docker.io/library/nginx", "registry-1.docker.io", "library/nginx"),
    ("127.0.0.1:5055/edge/app", "127.0.0.1:5055", "edge/app"),
    ("localhost/app", "localhost", "app"),
    ("ghcr.io/acme/deep/app", "ghcr.io", "acme/deep/app"),
])
def test_split_repository(repository: str, host: str, path: str) -> None:
    name = split_repository(repository)
    assert (name.host, name.path) == (host, path)


def test_canonical_unifies_hub_spellings_only() -> None:
    assert canonical("nginx") == canonical("index.docker.io/library/nginx") == "docker.io/library/nginx"
    assert canonical("127.0.0.1:5055/edge/app") == "127.0.0.1:5055/edge/app"
    assert canonical("ghcr.io/nginx") != canonical("nginx")


@pytest.mark.parametrize("host, insecure, scheme", [
    ("127.0.0.1:5055", (), "http"),
    ("127.9.9.9:80", (), "http"),
    ("localhost:5000", (), "http"),
    ("[::1]:5000", (), "http"),
    ("registry-1.docker.io", (), "https"),
    ("10.0.0.5:5000", (), "https"),
    ("10.0.0.5:5000", ("10.0.0.5:5000",), "http"),
    ("10.0.0.5:5000", ("10.0.0.5",), "http"),
    ("10.0.0.5:5001", ("10.0.0.5:5000",), "https"),
    ("localhost.evil.com", (), "https"),
    ("128.0.0.1:5000", (), "https"),
])
def test_scheme(host: str, insecure: tuple[str, ...], scheme: str) -> None:
    assert scheme_for(host, insecure) == scheme


def test_parse_bearer_challenge() -> None:
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                        'scope="repository:library/nginx:pull"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/nginx:pull"}


def test_parse_challenge_variants() -> None:
    assert parse_challenge('Basic realm="Registry Realm"').params == {"realm": "Registry Realm"}  # type: ignore[union-attr]
    spaced = parse_challenge('bearer  realm = "http://127.0.0.1:1/t" , service=reg, error="insufficient_scope"')
    assert spaced is not None and spaced.params["service"] == "reg" and spaced.params["realm"] == "http://127.0.0.1:1/t"
    escaped = parse_challenge(r'Bearer realm="a\"b"')
    assert escaped is not None and escaped.params["realm"] == 'a"b'
    assert parse_challenge("") is None
    assert parse_challenge('Bearer realm="unterminated') is None


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_auth_or_username_password() -> None:
    config = {"auths": {"ghcr.io": {"auth": b64("me:s3:cret")},
                        "https://reg.example:5000/v2/": {"username": "u", "password": "p"}}}
    assert credentials_for("ghcr.io", config) == Credentials("me", "s3:cret")
    assert credentials_for("reg.example:5000", config) == Credentials("u", "p")
    assert credentials_for("reg.example", config) is None  # the port is part of the name
    assert credentials_for("quay.io", config) is None


def test_hub_credentials_are_filed_under_index_docker_io() -> None:
    config = {"auths": {"https://index.docker.io/v1/": {"auth": b64("hubber:pw")}}}
    assert credentials_for("registry-1.docker.io", config) == Credentials("hubber", "pw")


def test_unusable_entries_and_helpers_are_errors_not_anonymous() -> None:
    with pytest.raises(RegistryAuthError, match="no usable credentials"):
        credentials_for("ghcr.io", {"auths": {"ghcr.io": {"auth": "%%%"}}})
    with pytest.raises(RegistryAuthError, match="credential helper 'ecr-login'"):
        credentials_for("x.ecr.aws", {"credHelpers": {"x.ecr.aws": "ecr-login"}})
    with pytest.raises(RegistryAuthError, match="credential helper 'desktop'"):
        credentials_for("ghcr.io", {"auths": {"ghcr.io": {}}, "credsStore": "desktop"})
    assert credentials_for("quay.io", {"auths": {"ghcr.io": {}}, "credsStore": "desktop"}) is None


def test_secret_is_not_in_repr() -> None:
    assert "s3cret" not in repr(Credentials("me", "s3cret"))


def test_load_docker_config(tmp_path: Path) -> None:
    assert load_docker_config(tmp_path / "missing.json") == {}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RegistryAuthError, match="not valid JSON"):
        load_docker_config(bad)
    bad.write_text("[]")
    with pytest.raises(RegistryAuthError, match="expected a JSON object"):
        load_docker_config(bad)
