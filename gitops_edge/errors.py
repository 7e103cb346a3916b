"""The project's one error tree.

Adapters translate library exceptions (docker, git, sqlite, sigstore) into
these once, at the boundary; ``gitops_edge.core.outcome`` reads them into an
outcome, and the CLI maps them to exit codes (README.md). The tree below is
kept here; docs/architecture.md shows a copy that a unit test holds equal::

    EdgeError                         exit  default retry
    ├── UsageError                      2   permanent
    ├── ConfigError                     2   permanent
    ├── DesiredStateError               2   permanent
    │   ├── StackErrors  (several at once, core.compose.problems)
    │   └── ImagePlatformError          2   permanent (no variant for the device's platform)
    ├── TrustError                      3   permanent
    ├── SourceError                     4   retryable
    │   ├── SourceThrottledError        4   retryable after the server's Retry-After
    │   └── RefNotFoundError            4   permanent
    ├── RegistryError                   4   retryable
    │   ├── RegistryProtocolError       4   permanent
    │   ├── RegistryAuthError           4   permanent
    │   └── ImageNotFoundError          4   permanent
    ├── EngineError                     4   retryable
    │   ├── EngineUnavailableError      4   retryable
    │   ├── EngineNotFoundError         4   permanent
    │   └── EngineConflictError         4   permanent
    ├── MqttError                       4   retryable
    ├── StateStoreError                 2   permanent
    └── ApplyError                      1   permanent
        └── RollbackFailed              1   permanent

Which failure it was (the class) and whether retrying can help (``retry``) are
separate axes: every class has a default, and a raise site that knows better
passes ``retry=`` (for example a registry's HTTP 429 with its Retry-After).
The pure parsers' ``ValueError`` subclasses (``InterpolationError``,
``DotenvError``, ``PortError``, ``PathEscapeError``) never leave ``core``:
the loader turns them into ``DesiredStateError`` with a location.
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


@dataclass(frozen=True)
class Retry:
    """Whether retrying the same input later can help, and not sooner than ``after_s``."""

    retryable: bool
    after_s: float | None = None


PERMANENT = Retry(False)
RETRYABLE = Retry(True)


class EdgeError(Exception):
    """Base of every error gitops-edge reports to a user."""

    exit_code = 2
    default_retry = PERMANENT

    def __init__(self, message: str, location: Location | None = None, *, retry: Retry | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.retry = retry if retry is not None else self.default_retry

    @property
    def retryable(self) -> bool:
        return self.retry.retryable

    @property
    def retry_after_s(self) -> float | None:
        return self.retry.after_s

    def __str__(self) -> str:
        if self.location is not None:
            return f"{self.location}: {self.message}"
        return self.message


class UsageError(EdgeError):
    """Bad command-line use."""


class ConfigError(EdgeError):
    """The device-local agent configuration is invalid."""


class DesiredStateError(EdgeError):
    """The desired state in Git is invalid: nothing is changed on the device."""


class ImagePlatformError(DesiredStateError):
    """An image offers no variant for the device's platform (e.g. amd64 only on a Raspberry Pi).

    Found while pinning images, before anything is pulled or stopped; retrying
    cannot help until someone pushes the platform or changes the compose file.
    """


class TrustError(EdgeError):
    """Refused by the trust or device security policy: nothing is changed."""

    exit_code = 3


class SourceError(EdgeError):
    """The Git source could not be reached or read."""

    exit_code = 4
    default_retry = RETRYABLE


class SourceThrottledError(SourceError):
    """The Git server answered HTTP 429 or 503: come back later, and not sooner than it asked.

    ``retry_after_s`` is the server's ``Retry-After`` in seconds (None when it sent none);
    the daemon waits at least that long before the next poll.
    """

    def __init__(self, message: str, *, status: int, retry_after_s: float | None = None) -> None:
        super().__init__(message, retry=Retry(True, retry_after_s))
        self.status = status


class RefNotFoundError(SourceError):
    """The configured ref (branch, tag or commit) does not exist on the remote.

    Retrying cannot help until someone pushes the ref or fixes the config.
    """

    default_retry = PERMANENT


class RegistryError(EdgeError):
    """An image could not be resolved or pulled from its registry."""

    exit_code = 4
    default_retry = RETRYABLE


class RegistryProtocolError(RegistryError):
    """The registry answered, but not as the distribution spec says (bad JSON, wrong digest, too big)."""

    default_retry = PERMANENT


class RegistryAuthError(RegistryError):
    """The registry refused our credentials, or its auth challenge cannot be answered."""

    default_retry = PERMANENT


class ImageNotFoundError(RegistryError):
    """The image does not exist in its registry (or locally, under ``pull_policy: never``)."""

    default_retry = PERMANENT


class EngineError(EdgeError):
    """The container engine (Docker) failed or is unreachable."""

    exit_code = 4
    default_retry = RETRYABLE


class EngineUnavailableError(EngineError):
    """The engine did not answer at all (socket gone, timeout, daemon restarting).

    Not a verdict on what was asked: an update interrupted by it is undone and
    retried, never quarantined (docs/architecture.md, "An update, step by step").
    """


class EngineNotFoundError(EngineError):
    """A container, network, volume or image the engine was asked about does not exist."""

    default_retry = PERMANENT


class EngineConflictError(EngineError):
    """The engine refused a request as invalid or conflicting (HTTP 4xx).

    Retrying the same request cannot help: a name is taken, a mount source is
    missing, a network is still in use.
    """

    default_retry = PERMANENT


class MqttError(EdgeError):
    """The MQTT broker could not be reached or refused us (fleet status only; syncs go on)."""

    exit_code = 4
    default_retry = RETRYABLE


class StateStoreError(EdgeError):
    """The local state store could not be read or written."""


class ApplyError(EdgeError):
    """An update failed after the switch began; the old state was restored."""

    exit_code = 1


class RollbackFailed(ApplyError):
    """The update failed and so did the way back: automation stops for the stack."""
