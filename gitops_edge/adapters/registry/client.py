"""A small OCI distribution client: resolve tags, read manifests and blobs, push.

Only what signature discovery (and its tests) need. Every byte read by
digest is checked against that digest, every response is size-limited and
every request has a timeout; library errors become ``RegistryError`` here,
once. Plain HTTP is used only for loopback and ``registries.insecure``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urljoin

import requests

from gitops_edge.adapters.registry.auth import (
    Challenge,
    Credentials,
    credentials_for,
    load_docker_config,
    parse_challenge,
)
from gitops_edge.adapters.registry.names import RepoName, scheme_for, split_repository
from gitops_edge.core.image_ref import parse
from gitops_edge.core.platform import Platform, choose, describe, from_descriptor, parse_platform
from gitops_edge.errors import (
    ImageNotFoundError,
    ImagePlatformError,
    RegistryAuthError,
    RegistryError,
    RegistryProtocolError,
)
from gitops_edge.model.trust import RegistriesConfig

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # distribution's own limit
MAX_BLOB_BYTES = 4 * 1024 * 1024  # signatures and bundles are a few KiB; images are pulled by Docker


@dataclass(frozen=True)
class Manifest:
    digest: str  # sha256:... of ``body``
    media_type: str
    body: bytes

    def json(self) -> dict[str, object]:
        """The parsed body; anything but a JSON object is a ``RegistryError``."""
        return _json_object(self.body, f"manifest {self.digest}")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(data: bytes, digest: str, what: str) -> None:
    """Content addressing is the integrity check: only sha256 is accepted."""
    if not digest.startswith("sha256:"):
        raise RegistryError(f"{what}: unsupported digest algorithm in {digest!r}")
    if sha256_digest(data) != digest:
        raise RegistryProtocolError(f"{what}: content does not match digest {digest}")


class RegistryClient:
    """One client per sync; holds a session, loaded credentials and bearer tokens."""

    def __init__(self, registries: RegistriesConfig | None = None, *, timeout_s: float = 30.0) -> None:
        self._registries = registries or RegistriesConfig()
        self._timeout = (min(10.0, timeout_s), timeout_s)
        self._session: requests.Session | None = None
        self._docker_config: dict[str, object] | None = None
        self._tokens: dict[tuple[str, str], str] = {}

    # -- reading --------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """The manifest digest the registry serves for ``ref`` (a pinned ref is returned as is)."""
        image = parse(ref)
        if image.digest:
            return image.digest
        name = split_repository(image.repository)
        tag = image.tag or "latest"
        resp = self._request("HEAD", name, f"manifests/{tag}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
        self._check_status(resp, name, f"tag {tag}")
        digest = resp.headers.get("Docker-Content-Digest", "")
        if digest.startswith("sha256:") and len(digest) == 71:
            return digest
        return self.manifest(image.repository, tag).digest  # no header: hash what GET returns

    def manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest for a tag or digest; ``ImageNotFoundError`` when there is none."""
        name = split_repository(repository)
        resp = self._request("GET", name, f"manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)},
                             stream=True)
        self._check_status(resp, name, reference)
        body = self._read(resp, MAX_MANIFEST_BYTES, f"{name}:{reference}")
        digest = sha256_digest(body)
        what = f"manifest {name}@{reference}" if reference.startswith("sha256:") else f"manifest {name}:{reference}"
        if reference.startswith("sha256:"):
            check_digest(body, reference, what)
        sent = resp.headers.get("Docker-Content-Digest")
        if sent and sent.startswith("sha256:") and sent != digest:
            raise RegistryProtocolError(f"{what}: registry says {sent} but the content hashes to {digest}")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(digest=digest, media_type=media_type, body=body)

    def platforms(self, repository: str, reference: str) -> dict[Platform, str]:
        """Every platform behind ``reference`` and the digest of its single-platform manifest.

        An index (OCI index, Docker manifest list) lists them; a single manifest
        is one platform, read from its config blob. Index entries without a
        platform (attestations, signatures) are not images and are skipped.
        """
        m = self.manifest(repository, reference)
        data = m.json()
        media_type = m.media_type or str(data.get("mediaType") or "")
        if media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in data:
            out: dict[Platform, str] = {}
            entries = data.get("manifests")
            if not isinstance(entries, list):
                raise RegistryProtocolError(f"index {repository}@{m.digest}: no manifests list")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("platform"), dict):
                    continue
                plat = from_descriptor(entry["platform"])
                digest = entry.get("digest")
                if plat.architecture in ("", "unknown") or not isinstance(digest, str):
                    continue  # buildkit's attestation manifests say unknown/unknown
                out.setdefault(plat, digest)  # the first entry wins, as in containerd
            return out
        config = data.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
            raise RegistryProtocolError(f"manifest {repository}@{m.digest}: no config descriptor")
        cfg = _json_object(self.blob(repository, config["digest"]), f"config of {repository}@{m.digest}")
        return {from_descriptor(cfg): m.digest}

    def platform_manifest(self, repository: str, reference: str, platform: Platform | str) -> str:
        """The manifest digest ``platform`` runs from ``reference``; ``ImagePlatformError`` when none."""
        wanted = parse_platform(platform) if isinstance(platform, str) else platform
        offered = self.platforms(repository, reference)
        if len(offered) == 1 and not next(iter(offered)).architecture:
            return next(iter(offered.values()))  # a config that names no platform: nothing to choose
        chosen = choose(wanted, offered)
        if chosen is None:
            sep = "@" if reference.startswith("sha256:") else ":"
            raise ImagePlatformError(f"image {repository}{sep}{reference} has no {wanted} variant "
                                     f"(it offers {describe(offered)})")
        return offered[chosen]

    def blob(self, repository: str, digest: str, max_bytes: int = MAX_BLOB_BYTES) -> bytes:
        name = split_repository(repository)
        resp = self._request("GET", name, f"blobs/{digest}", stream=True)
        self._check_status(resp, name, digest)
        body = self._read(resp, max_bytes, f"blob {name}@{digest}")
        check_digest(body, digest, f"blob {name}@{digest}")
        return body

    def tags(self, repository: str) -> list[str]:
        """Every tag (following ``Link`` pagination)."""
        name = split_repository(repository)
        out: list[str] = []
        path = "tags/list?n=1000"
        for _ in range(100):
            resp = self._request("GET", name, path, stream=True)
            self._check_status(resp, name, "tags")
            data = _json_object(self._read(resp, MAX_MANIFEST_BYTES, f"{name} tags"), f"{name} tags")
            tags = data.get("tags") or []
            if not isinstance(tags, list):
                raise RegistryProtocolError(f"{name}: malformed tag list")
            out += [t for t in tags if isinstance(t, str)]
            link = resp.headers.get("Link", "")
            if not link.startswith("<"):
                return out
            path = link[1 : link.index(">")].split(f"/v2/{name.path}/", 1)[-1]
        return out

    def referrers(self, repository: str, digest: str) -> dict[str, object] | None:
        """The OCI referrers API's index, or None when the registry has no such API."""
        name = split_repository(repository)
        resp = self._request("GET", name, f"referrers/{digest}", headers={"Accept": OCI_INDEX}, stream=True)
        if resp.status_code in (400, 404, 405, 501):
            resp.close()
            return None
        self._check_status(resp, name, f"referrers of {digest}")
        if resp.headers.get("Content-Type", "").split(";")[0].strip() != OCI_INDEX:
            resp.close()
            return None
        return _json_object(self._read(resp, MAX_MANIFEST_BYTES, f"{name} referrers"), f"{name} referrers")

    # -- writing (tests and tooling) -------------------------------------

    def push_blob(self, repository: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT ?digest=); returns the digest."""
        name = split_repository(repository)
        digest = sha256_digest(data)
        head = self._request("HEAD", name, f"blobs/{digest}", push=True)
        if head.status_code == 200:
            return digest
        resp = self._request("POST", name, "blobs/uploads/", push=True)
        self._check_status(resp, name, "blob upload", ok=(202,))
        location = resp.headers.get("Location", "")
        url = urljoin(self._base(name) + "/", location)
        url += ("&" if "?" in url else "?") + urlencode({"digest": digest})
        put = self._request("PUT", name, "", url=url, push=True, data=data,
                            headers={"Content-Type": "application/octet-stream"})
        self._check_status(put, name, f"blob {digest}", ok=(201,))
        return digest

    def push_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        name = split_repository(repository)
        resp = self._request("PUT", name, f"manifests/{reference}", push=True, data=body,
                             headers={"Content-Type": media_type})
        self._check_status(resp, name, f"manifest {reference}", ok=(201,))
        return sha256_digest(body)

    # -- plumbing --------------------------------------------------------

    def _base(self, name: RepoName) -> str:
        return f"{scheme_for(name.host, self._registries.insecure)}://{name.host}/v2/{name.path}"

    def _request(self, method: str, name: RepoName, path: str, *, url: str | None = None, push: bool = False,
                 headers: dict[str, str] | None = None, data: bytes | None = None,
                 stream: bool = False) -> requests.Response:
        """One request, answering at most one auth challenge (bearer token or basic)."""
        url = url or f"{self._base(name)}/{path}"
        scope = f"repository:{name.path}:{'pull,push' if push else 'pull'}"
        hdrs = dict(headers or {})
        token = self._tokens.get((name.host, scope))
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        resp = self._send(method, url, name, hdrs, data, stream)
        if resp.status_code != 401:
            return resp
        challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        resp.close()
        hdrs["Authorization"] = self._authorization(name, scope, challenge)
        return self._send(method, url, name, hdrs, data, stream)

    def _send(self, method: str, url: str, name: RepoName, headers: dict[str, str], data: bytes | None,
              stream: bool) -> requests.Response:
        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False  # no netrc/proxy surprises: credentials come from config.json only
        try:
            return self._session.request(method, url, headers=headers, data=data, stream=stream,
                                         timeout=self._timeout, allow_redirects=True)
        except requests.Timeout:
            raise RegistryError(f"registry {name.host} did not answer within {self._timeout[1]:g}s") from None
        except requests.RequestException as exc:
            raise RegistryError(f"registry {name.host} unreachable: {_short(exc)}") from None

    def _authorization(self, name: RepoName, scope: str, challenge: Challenge | None) -> str:
        creds = self._credentials(name.host)
        if challenge is None:
            raise RegistryAuthError(f"registry {name.host} refused access without a usable challenge")
        if challenge.scheme == "basic":
            if creds is None:
                raise RegistryAuthError(f"registry {name.host} requires credentials; none in {self._auth_path()}")
            return _basic(creds)
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise RegistryAuthError(f"registry {name.host}: unsupported auth challenge {challenge.scheme!r}")
        token = self._fetch_token(name, challenge.params, scope, creds)
        self._tokens[(name.host, scope)] = token
        return f"Bearer {token}"

    def _fetch_token(self, name: RepoName, params: dict[str, str], scope: str, creds: Credentials | None) -> str:
        query = {"scope": scope}
        if "service" in params:
            query["service"] = params["service"]
        realm = params["realm"]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers = {}
        if creds is not None:
            headers["Authorization"] = _basic(creds)
        resp = self._send("GET", url, name, headers, None, True)
        if resp.status_code in (401, 403):
            resp.close()
            raise RegistryAuthError(f"registry {name.host}: token service refused "
                                    f"{'the credentials' if creds else 'anonymous access'} for {name.path}")
        if resp.status_code != 200:
            resp.close()
            raise RegistryError(f"registry {name.host}: token service answered HTTP {resp.status_code}")
        data = _json_object(self._read(resp, 1024 * 1024, "token"), f"registry {name.host} token")
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryProtocolError(f"registry {name.host}: token service sent no token")
        return token

    def _auth_path(self) -> Path:
        if self._registries.auth_file is not None:
            return self._registries.auth_file
        return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"

    def _credentials(self, host: str) -> Credentials | None:
        if self._docker_config is None:
            self._docker_config = load_docker_config(self._auth_path())
        return credentials_for(host, self._docker_config, str(self._auth_path()))

    def _check_status(self, resp: requests.Response, name: RepoName, what: str, ok: tuple[int, ...] = (200,)) -> None:
        if resp.status_code in ok:
            return
        code = resp.status_code
        detail = _error_code(resp)
        if code == 404:
            raise ImageNotFoundError(f"{name}: {what} not found")
        if code in (401, 403):
            raise RegistryAuthError(f"registry {name.host} denied access to {name.path} ({what}): HTTP {code}")
        if code >= 500 or code == 429:
            raise RegistryError(f"registry {name.host} failed on {name.path} ({what}): HTTP {code}")
        raise RegistryProtocolError(f"registry {name.host} refused {name.path} ({what}): HTTP {code}{detail}")

    def _read(self, resp: requests.Response, limit: int, what: str) -> bytes:
        """The body, refusing more than ``limit`` bytes (checked while streaming)."""
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            resp.close()
            raise RegistryProtocolError(f"{what}: {declared} bytes is over the {limit} byte limit")
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise RegistryProtocolError(f"{what}: more than the {limit} byte limit")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise RegistryError(f"{what}: read failed: {_short(exc)}") from None
        finally:
            resp.close()
        return b"".join(chunks)


def _json_object(body: bytes, what: str) -> dict[str, object]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RegistryProtocolError(f"{what}: not a JSON object")
    return data


def _error_code(resp: requests.Response) -> str:
    """The distribution error code (``MANIFEST_INVALID``...), if the body is small and says one."""
    try:
        if resp.request.method == "HEAD" or int(resp.headers.get("Content-Length") or 0) > 65536:
            return ""
        errors = json.loads(resp.raw.read(65536, decode_content=True)).get("errors")
        return f" {errors[0]['code']}" if isinstance(errors[0]["code"], str) else ""
    except Exception:  # best effort: the status code already says what matters
        return ""
    finally:
        resp.close()


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def _short(exc: Exception) -> str:
    """requests nests the root cause deep inside; the last line is the useful one."""
    text = str(exc).strip() or type(exc).__name__
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip().lower()
    return text.splitlines()[-1][:200]
