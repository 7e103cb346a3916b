"""Where a repository lives: registry host, path inside it, and the URL scheme.

Pure string rules, so the http-vs-https decision and Docker Hub's spellings
are unit-tested without a network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

HUB_HOST = "registry-1.docker.io"  # where Docker Hub's API answers
HUB_AUTH_KEY = "https://index.docker.io/v1/"  # how docker login files Hub credentials
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class RepoName:
    host: str  # host[:port] the distribution API answers on
    path: str  # repository path inside the registry ("library/nginx", "edge/app")

    def __str__(self) -> str:
        return f"{self.host}/{self.path}"


def split_repository(repository: str) -> RepoName:
    """``[host[:port]/]path`` → host and path, the way Docker decides what a host is.

    The first component is a host only if it has a dot or a colon or is
    ``localhost``; otherwise the name lives on Docker Hub, where one-part
    names are under ``library/``.
    """
    first, sep, rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "docker.io", repository
    if host in _HUB_ALIASES:
        host = HUB_HOST
        if "/" not in path:
            path = f"library/{path}"
    return RepoName(host=host, path=path)


def canonical(repository: str) -> str:
    """One spelling per repository: ``docker.io/library/nginx``, ``127.0.0.1:5055/edge/app``.

    Cosign writes ``index.docker.io/library/nginx`` into its payloads; Docker
    users write ``nginx``. Both compare equal in this form.
    """
    name = split_repository(repository)
    host = "docker.io" if name.host == HUB_HOST else name.host
    return f"{host}/{name.path}"


def _bare_host(hostport: str) -> str:
    if hostport.startswith("["):  # [::1]:5000
        return hostport[1 : hostport.find("]")]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def is_loopback(hostport: str) -> bool:
    host = _bare_host(hostport)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scheme_for(hostport: str, insecure: tuple[str, ...] = ()) -> str:
    """``http`` only for loopback and registries the device config lists as insecure.

    An ``insecure`` entry matches ``host:port`` exactly, or any port when it
    names the bare host.
    """
    if is_loopback(hostport) or hostport in insecure or _bare_host(hostport) in insecure:
        return "http"
    return "https"
