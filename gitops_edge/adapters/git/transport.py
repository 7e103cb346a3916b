"""How the agent talks to a Git remote: environment, credentials, redaction.

Everything here exists so that a git subprocess run by the agent never waits
for a human (no prompts, bounded time), never writes a secret anywhere on disk
or into argv, and never reports a secret in an error message.
"""

from __future__ import annotations

import base64
import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gitops_edge.adapters.git.hardening import config_env, safe_env, safe_settings
from gitops_edge.errors import SourceError
from gitops_edge.model.config import SourceConfig

# Transfer slower than this many bytes/s for ``timeout_s`` aborts an HTTP transfer,
# a second line of defence next to the hard process timeout.
_LOW_SPEED_BYTES = 1000

# HTTP statuses that mean "slow down" rather than "broken": the daemon backs off and
# honours the server's Retry-After (see throttle_status, retry_after_from_trace).
THROTTLE_STATUSES = (429, 503)
_RETURNED_ERROR = re.compile(r"The requested URL returned error: (\d{3})")
_TRACE_STATUS = re.compile(r"<= Recv header: HTTP/[\d.]+ (\d{3})")
_TRACE_RETRY_AFTER = re.compile(r"<= Recv header: Retry-After:\s*(.*?)\s*$", re.IGNORECASE)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_USERINFO_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@")


def normalise_url(url: str) -> str:
    """A URL git can use from any working directory.

    Plain local paths are made absolute because git runs in the cache clone,
    not where the agent was started; URLs and scp-like ``host:path`` stay as
    they are (git's own rule: a ``:`` before the first ``/`` means ssh).
    """
    if _SCHEME.match(url):
        return url
    head = url.split("/", 1)[0]
    if ":" in head and not Path(url).exists():
        return url
    return str(Path(url).expanduser().resolve())


def is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def display_url(url: str) -> str:
    """``url`` with any password in its userinfo replaced: safe for messages."""
    return _USERINFO_PASSWORD.sub(r"\g<scheme>\g<user>:***@", url)


def ssh_command(config: SourceConfig) -> str:
    """The ``GIT_SSH_COMMAND`` for ``config``: non-interactive, bounded, pinned.

    ``BatchMode`` makes ssh fail instead of asking for a passphrase or host-key
    confirmation; with ``known_hosts`` set, only keys listed there are accepted.
    """
    args = [
        "ssh",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={max(1, round(config.timeout_s))}",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=3",
    ]  # fmt: skip
    if config.ssh_key is not None:
        args += ["-i", str(config.ssh_key), "-o", "IdentitiesOnly=yes"]
    if config.known_hosts is not None:
        args += [
            "-o", f"UserKnownHostsFile={config.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
        ]  # fmt: skip
    return shlex.join(args)


def read_token(config: SourceConfig) -> str | None:
    """The https token, read fresh on every call so a rotated file takes effect."""
    if config.token_file is None:
        return None
    try:
        token = config.token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SourceError(f"cannot read token file {config.token_file}: {reason}") from None
    if not token:
        raise SourceError(f"token file {config.token_file} is empty")
    return token


@dataclass(frozen=True)
class Transport:
    """The environment for git subprocesses plus the secrets to redact from output."""

    env: dict[str, str]
    secrets: tuple[str, ...]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return display_url(text)


def transport_for(config: SourceConfig, url: str) -> Transport:
    """Build the git environment for one sync.

    Configuration goes through ``GIT_CONFIG_COUNT``/``KEY``/``VALUE`` rather than
    ``-c`` so the token never shows in argv (``ps``, GitPython's debug log) and
    never lands in ``.git/config``. System and global git config are ignored so
    a device behaves the same whatever ``~/.gitconfig`` holds, and nothing the
    repository holds can make git start a program (``hardening``). Local commands
    use the same environment: only the transport's own settings differ.
    """
    settings = safe_settings(url)
    # v2 lets ls-remote --heads/--tags ask the server for only those refs (ref-prefix);
    # servers that do not speak it answer in v0 and git falls back.
    settings.append(("protocol.version", "2"))
    secrets: list[str] = []
    token = read_token(config) if is_http(url) else None
    if token is not None:
        basic = base64.b64encode(f"{config.username}:{token}".encode()).decode("ascii")
        settings.append(("http.extraHeader", f"Authorization: Basic {basic}"))
        secrets += [token, basic]
    env = {
        **safe_env(),
        "GIT_ASKPASS": "",  # set but empty: git skips askpass helpers entirely
        "SSH_ASKPASS": "",
        "GCM_INTERACTIVE": "never",
        "GIT_SSH_COMMAND": ssh_command(config),
        "GIT_HTTP_LOW_SPEED_LIMIT": str(_LOW_SPEED_BYTES),
        "GIT_HTTP_LOW_SPEED_TIME": str(max(1, round(config.timeout_s))),
        **config_env(settings),
    }
    return Transport(env=env, secrets=tuple(secrets))


def local_env(config: SourceConfig, url: str) -> dict[str, str]:
    """The environment of a git command that talks to no remote: as hardened, no secrets."""
    return {**safe_env(), "GIT_SSH_COMMAND": ssh_command(config), **config_env(safe_settings(url))}


# -- servers that ask us to slow down -------------------------------------------------
#
# git reports an HTTP error status on stderr but never its headers. Rather than
# re-implementing the smart-HTTP handshake to read them, every HTTP(S) git command
# runs with GIT_TRACE_CURL pointed at a private temporary file (headers only:
# GIT_TRACE_CURL_NO_DATA; git redacts Authorization/cookies, GIT_TRACE_REDACT).
# After a failure the trace is read for the last response's Retry-After and deleted.
# One request, the same one git would make anyway: nothing extra hits a busy server.


def trace_env(trace_file: str) -> dict[str, str]:
    """Environment that makes git write curl's header trace to ``trace_file``."""
    return {"GIT_TRACE_CURL": trace_file, "GIT_TRACE_CURL_NO_DATA": "1", "GIT_TRACE_REDACT": "1"}


def throttle_status(stderr: str) -> int | None:
    """429 or 503 when git's stderr says the server answered with one, else None."""
    found = _RETURNED_ERROR.findall(stderr)
    status = int(found[-1]) if found else None
    return status if status in THROTTLE_STATUSES else None


def parse_retry_after(value: str, now: float) -> float | None:
    """``Retry-After`` (delta-seconds or an HTTP-date) as seconds from ``now``; None if unusable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime  # only for a throttled answer

    try:
        when: datetime = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def retry_after_from_trace(trace: str, now: float) -> float | None:
    """The Retry-After of the last HTTP response in a GIT_TRACE_CURL trace, if it was 429/503."""
    status: int | None = None
    retry_after: str | None = None
    for line in trace.splitlines():
        m = _TRACE_STATUS.search(line)
        if m:
            status, retry_after = int(m.group(1)), None  # a new response starts
            continue
        m = _TRACE_RETRY_AFTER.search(line)
        if m:
            retry_after = m.group(1)
    if status not in THROTTLE_STATUSES or retry_after is None:
        return None
    return parse_retry_after(retry_after, now)
