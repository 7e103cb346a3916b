"""Registry credentials and challenges: docker ``config.json`` and ``WWW-Authenticate``.

Pure parsing (plus one file read), so the lookup rules are unit-tested
without a registry. Secrets never appear in error messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from pathlib import Path

from gitops_edge.adapters.registry.names import HUB_AUTH_KEY, HUB_HOST
from gitops_edge.errors import RegistryAuthError


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" | "basic" (lower case)
    params: dict[str, str]


_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"``.

    Registries send exactly one challenge; anything unparseable is None,
    which the caller treats as "cannot authenticate".
    """
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            return None
        quoted, bare = m.group(2), m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        pos = m.end()
    return Challenge(scheme=scheme.lower(), params=params)


def _key_host(key: str) -> str:
    """``https://host:5000/v1/`` and ``host:5000`` both file credentials for ``host:5000``."""
    key = re.sub(r"^[a-z]+://", "", key.strip())
    return key.split("/", 1)[0]


def credentials_for(host: str, config: dict[str, object], source: str = "config.json") -> Credentials | None:
    """The ``auths`` entry for ``host`` in a parsed docker config, or None (anonymous).

    Docker Hub credentials are filed under ``https://index.docker.io/v1/``.
    Credential helpers are not run: an entry that only names one is an error,
    since silently going anonymous would hide the misconfiguration.
    """
    auths = config.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    wanted = {host}
    if host == HUB_HOST:
        wanted |= {_key_host(HUB_AUTH_KEY), "docker.io"}
    helpers = config.get("credHelpers")
    helper = helpers.get(host) if isinstance(helpers, dict) else None
    helper = helper or config.get("credsStore")
    for key, entry in auths.items():
        if not isinstance(key, str) or _key_host(key) not in wanted or not isinstance(entry, dict):
            continue
        found = _entry_credentials(entry)
        if found is not None:
            return found
        if helper:
            break
        raise RegistryAuthError(f"{source}: the entry for {host} holds no usable credentials"
                                " (auth, or username and password)")
    if (isinstance(helpers, dict) and host in helpers) or (helper and any(
            isinstance(k, str) and _key_host(k) in wanted for k in auths)):
        raise RegistryAuthError(f"{source}: credentials for {host} are in credential helper {helper!r},"
                                " which is not supported; put them under auths")
    return None


def _entry_credentials(entry: dict[str, object]) -> Credentials | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return Credentials(user, password) if sep else None
    username, secret = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(secret, str) and username:
        return Credentials(username, secret)
    return None


def load_docker_config(path: Path) -> dict[str, object]:
    """The parsed file, ``{}`` when it does not exist; unreadable or malformed is an error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RegistryAuthError(f"cannot read registry credentials {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryAuthError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise RegistryAuthError(f"{path}: expected a JSON object")
    return data
