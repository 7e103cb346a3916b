"""Image references as Docker spells them: split, compare, pin.

Pure string handling, so the pinning rules of ``DockerRuntime.resolve_image``
can be unit-tested without an engine.
"""

from __future__ import annotations

from dataclasses import dataclass

_HUB_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


@dataclass(frozen=True)
class ImageRef:
    repository: str  # as written, without tag or digest ("127.0.0.1:5055/edge/app", "nginx")
    tag: str | None = None
    digest: str | None = None  # "sha256:..."

    def pinned(self, digest: str) -> str:
        """``repository@digest``: what the container is created from."""
        return f"{self.repository}@{digest}"


def parse(ref: str) -> ImageRef:
    """Split ``[host[:port]/]path[:tag][@digest]``; a port colon is not a tag."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return ImageRef(repository=name, tag=tag or None, digest=digest or None)


def familiar(repository: str) -> str:
    """Docker's short form of a repository name, as shown in ``RepoDigests``.

    ``docker.io/library/nginx`` and ``nginx`` name the same repository; the
    engine reports the short one, so compare in that form.
    """
    for prefix in _HUB_PREFIXES:
        if repository.startswith(prefix):
            repository = repository[len(prefix) :]
            break
    if repository.startswith("library/") and repository.count("/") == 1:
        repository = repository[len("library/") :]
    return repository


def is_pinned(ref: str) -> bool:
    """Already names exact content: ``repo@sha256:...`` or a bare image id."""
    return "@sha256:" in ref or (ref.startswith("sha256:") and "/" not in ref)


def repo_digest_for(repository: str, repo_digests: list[str]) -> str | None:
    """The ``RepoDigests`` entry of a local image that belongs to ``repository``.

    Returned in the repository's spelling as written, so the pinned reference
    stays recognizable next to the compose file.
    """
    want = familiar(repository)
    for entry in repo_digests:
        repo, _, digest = entry.partition("@")
        if digest and familiar(repo) == want:
            return f"{repository}@{digest}"
    return None


def canonical(repository: str) -> str:
    """The full ``host[:port]/path`` form trust rules match against.

    ``nginx`` -> ``docker.io/library/nginx``; ``acme/app`` -> ``docker.io/acme/app``;
    a first component with a dot, a colon or ``localhost`` is a registry host.
    """
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host = "docker.io" if first in ("index.docker.io", "registry-1.docker.io") else first
        return f"{host}/{rest}"
    if not rest:
        return f"docker.io/library/{repository}"
    return f"docker.io/{repository}"
