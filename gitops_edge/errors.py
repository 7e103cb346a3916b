"""The project's one error tree.

Adapters translate library exceptions (docker, git, sqlite, sigstore) into
these once, at the boundary; the CLI maps them to exit codes (DESIGN.md §5).
``transient`` says whether retrying later without a change of input can help.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in the desired state (or config) a problem was found."""

    file: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
        if self.key:
            out += f": {self.key}"
        return out


class EdgeError(Exception):
    """Base of every error gitops-edge reports to a user."""

    exit_code = 2
    transient = False

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is not None:
            return f"{self.location}: {self.message}"
        return self.message


class UsageError(EdgeError):
    """Bad command-line use."""

    exit_code = 2


class ConfigError(EdgeError):
    """The device-local agent configuration is invalid."""

    exit_code = 2


class DesiredStateError(EdgeError):
    """The desired state in Git is invalid: nothing is changed on the device."""

    exit_code = 2


class TrustError(EdgeError):
    """Refused by the trust or device security policy: nothing is changed."""

    exit_code = 3


class SourceError(EdgeError):
    """The Git source or a registry could not be reached or read."""

    exit_code = 4
    transient = True


class SourceThrottledError(SourceError):
    """The Git server answered HTTP 429 or 503: come back later, and not sooner than it asked.

    ``retry_after_s`` is the server's ``Retry-After`` in seconds (None when it sent none);
    the daemon waits at least that long before the next poll.
    """

    def __init__(self, message: str, *, status: int, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class MqttError(EdgeError):
    """The MQTT broker could not be reached or refused us (fleet status only; syncs go on)."""

    exit_code = 4
    transient = True


class RegistryError(SourceError):
    """An image could not be resolved or pulled from its registry."""


class RuntimeError_(EdgeError):  # mirrors DESIGN.md's name
    """The container runtime (Docker engine) failed or is unreachable."""

    exit_code = 4
    transient = True


class ApplyError(EdgeError):
    """An update failed after the switch began; the old state was restored."""

    exit_code = 1


class StateStoreError(EdgeError):
    """The local state store could not be read or written."""

    exit_code = 2


class RefNotFoundError(SourceError):
    """The configured ref (branch, tag or commit) does not exist on the remote.

    Retrying cannot help until someone pushes the ref or fixes the config.
    """

    transient = False


class RuntimeNotFoundError(RuntimeError_):
    """A container, network, volume or image the engine was asked about does not exist."""

    transient = False


class EngineUnavailableError(RuntimeError_):
    """The engine did not answer at all (socket gone, timeout, daemon restarting).

    Not a verdict on what was asked: an update interrupted by it is undone and
    retried, never quarantined (DESIGN.md §7).
    """


class RuntimeConflictError(RuntimeError_):
    """The engine refused a request as invalid or conflicting (HTTP 4xx).

    Retrying the same request cannot help: a name is taken, a mount source is
    missing, a network is still in use.
    """

    transient = False


class ImageNotFoundError(RegistryError):
    """The image does not exist in its registry (or locally, under ``pull_policy: never``)."""

    transient = False
